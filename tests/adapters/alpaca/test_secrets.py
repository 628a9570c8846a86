"""No key id or secret in any log line or exception text, across the failures that log most:
wrong keys on both sockets and on REST, drops, 406, 5xx and timeouts (structlog captured)."""

from __future__ import annotations

import asyncio
import traceback

from adapters.alpaca.broker import AlpacaClient
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV, AlpacaSettings
from adapters.alpaca.feed import AlpacaFeed
from structlog.testing import capture_logs

from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET, FakeAlpaca
from tradeloop.errors import TradeloopError
from tradeloop.events import OrderType, Side
from tradeloop.stream.supervisor import SupervisedFeed
from tradeloop.venue import VenueOrder

WRONG_SECRET = "wrong-but-still-secret-987654"


def text_of(err: BaseException) -> str:
    return "".join(traceback.format_exception(err)) + repr(err)


async def test_no_secret_in_logs_or_errors(fake: FakeAlpaca) -> None:
    good = {KEY_ID_ENV: KEY_ID, SECRET_ENV: SECRET}
    bad = {KEY_ID_ENV: KEY_ID, SECRET_ENV: WRONG_SECRET}
    errors: list[BaseException] = []
    with capture_logs() as logs:
        # the data stream: a 406, a drop and a backfill, then wrong keys
        fake.refuse_406 = 1
        table = fake.settings(connection_limit_backoff_s=0.05, correction_grace_s=0.0)
        feed = AlpacaFeed(AlpacaSettings.from_mapping(table, good))
        supervised = SupervisedFeed(feed, base_backoff_s=0.01, seed=1)
        got: list[object] = []
        enough = asyncio.Event()

        async def consume() -> None:
            async for message in supervised.messages():
                got.append(message)
                if len(got) >= 5:  # 2 bars, Reconnected, then the backfill and minute 1
                    enough.set()

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(fake.subscribed.wait(), 5.0)
        await fake.publish(0)
        await fake.drop_data_clients()
        await asyncio.wait_for(fake.subscribed.wait(), 5.0)
        await fake.publish(1)
        await asyncio.wait_for(enough.wait(), 5.0)
        consumer.cancel()
        try:
            await anext(AlpacaFeed(AlpacaSettings.from_mapping(table, bad)).messages())
        except TradeloopError as err:
            errors.append(err)
        # the trading side: wrong keys at start, a 5xx and a timeout on submit
        trading = fake.settings(
            trade_updates_url=f"ws://127.0.0.1:{fake.port}/stream", request_timeout_s=0.3
        )
        client = AlpacaClient(AlpacaSettings.from_mapping(trading, bad))
        try:
            await client.start()
        except TradeloopError as err:
            errors.append(err)
        await client.close()
        client = AlpacaClient(AlpacaSettings.from_mapping(trading, good))
        await client.start()
        order = VenueOrder("tl-secret-test", "AAPL", Side.BUY, 1.0, OrderType.MARKET)
        for switch in ("accept_then_status", "accept_then_hang_s"):
            setattr(fake, switch, 500 if switch == "accept_then_status" else 1.0)
            try:
                await client.submit(order)
            except TradeloopError as err:
                errors.append(err)
            setattr(fake, switch, None if switch == "accept_then_status" else 0.0)
            order = VenueOrder("tl-secret-test-2", "AAPL", Side.BUY, 1.0, OrderType.MARKET)
        fills = client.executions()
        waiting = asyncio.ensure_future(anext(fills))
        await asyncio.wait_for(fake.trade_listening.wait(), 5.0)
        await fake.trade_error("internal server error")  # the documented error frame
        try:
            await asyncio.wait_for(waiting, 5.0)
        except TradeloopError as err:
            errors.append(err)
        await client.close()
    assert len(errors) == 5  # 402 on the feed, 401 at start, 5xx, timeout, the error frame
    assert len(logs) >= 5
    for secret in (SECRET, WRONG_SECRET, KEY_ID):
        for line in logs:
            assert secret not in repr(line)
        for err in errors:
            assert secret not in text_of(err)
