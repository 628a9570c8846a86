"""BinanceClient against the fake venue: orders, lookups, the account, fills, and the faults
(clock skew, 429 then 418, 5xx and timeouts after accept, duplicate and out-of-order reports,
partial fills, a dropped user stream); secrets never reach a log line or an error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import structlog

from adapters.binance import VENUE, BinanceClient
from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance
from tradeloop.errors import (
    ConfigError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
)
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.logs import configure_logging
from tradeloop.venue import Execution, VenueOrder

CID = "tl" + "0123456789abcdef0123456789abcd"  # the journal's id shape


def limit_buy(cid: str = CID, qty: float = 0.5, price: float = 95.0) -> VenueOrder:
    return VenueOrder(cid, "BTCUSDT", Side.BUY, qty, OrderType.LIMIT, limit_price=price)


class Fills:
    """Runs ``client.executions()`` in the background and keeps what it yields."""

    def __init__(self, client: BinanceClient) -> None:
        self.items: list[Execution] = []
        self._stream: AsyncIterator[Execution] = client.executions()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for execution in self._stream:
            self.items.append(execution)

    async def until(self, n: int, timeout_s: float = 5.0) -> list[Execution]:
        async with asyncio.timeout(timeout_s):
            while len(self.items) < n:  # noqa: ASYNC110 (polling a list is the simplest probe)
                await asyncio.sleep(0.01)
        return self.items

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def subscribed(fake: FakeBinance, n: int = 1) -> None:
    async with asyncio.timeout(5):
        while fake.subscriptions < n or not fake.user_sockets:  # noqa: ASYNC110 (a probe)
            await asyncio.sleep(0.01)


async def test_submit_market_order_is_filled(client: BinanceClient, fake: FakeBinance) -> None:
    order = VenueOrder(CID, "BTCUSDT", Side.BUY, 0.25, OrderType.MARKET)
    state = await client.submit(order)
    # the fake fills at its last price, 100.0
    assert (state.client_order_id, state.status, state.filled_qty) == (
        CID,
        OrderStatus.FILLED,
        0.25,
    )
    assert state.avg_fill_price == 100.0
    assert client.rest.used_weight_1m > 0  # read from X-MBX-USED-WEIGHT-1M


async def test_submit_limit_then_lookup_and_cancel(client: BinanceClient) -> None:
    state = await client.submit(limit_buy())
    assert state.status == OrderStatus.ACCEPTED
    assert (await client.order(CID, "BTCUSDT")).status == OrderStatus.ACCEPTED  # type: ignore[union-attr]
    await client.cancel(CID, "BTCUSDT")
    after = await client.order(CID, "BTCUSDT")
    assert after is not None
    assert after.status == OrderStatus.CANCELLED
    with pytest.raises(OrderRejectedError, match="-2011"):
        await client.cancel(CID, "BTCUSDT")  # nothing open any more


async def test_order_never_sent_is_none(client: BinanceClient) -> None:
    assert await client.order("tl-never-sent", "BTCUSDT") is None  # -2013


async def test_duplicate_open_client_id_means_it_exists_look_it_up(
    client: BinanceClient, fake: FakeBinance
) -> None:
    await client.submit(limit_buy())
    # -2010 "Duplicate order sent.": the id is in use by an open order, so the order EXISTS
    with pytest.raises(OutcomeUnknownError, match=r"-2010.*Duplicate order sent.*look it up"):
        await client.submit(limit_buy())
    found = await client.order(CID, "BTCUSDT")
    assert found is not None
    assert found.status == OrderStatus.ACCEPTED
    assert len(fake.orders) == 1


async def test_filter_rules_refuse_locally_and_insufficient_balance_at_the_venue(
    client: BinanceClient, fake: FakeBinance
) -> None:
    # 0.00001 BTC × 95 = 0.00095 USDT, below BTCUSDT's NOTIONAL minimum of 5: never sent
    with pytest.raises(OrderRejectedError, match=r"notional 0.00095000 is below .* 5"):
        await client.submit(limit_buy(qty=0.00001))
    assert ("POST", "/api/v3/order") not in fake.requests
    with pytest.raises(OrderRejectedError, match=r"-2010.*insufficient balance"):
        await client.submit(limit_buy("tl-big", qty=1000.0))


async def test_client_ids_that_do_not_fit_are_mapped_and_come_back(
    client: BinanceClient, fake: FakeBinance
) -> None:
    ours = "run 7/strategy:momentum/order#12 with a long tail"
    state = await client.submit(limit_buy(ours))
    venue_ids = [cid for _, cid in fake.orders]
    assert venue_ids[0] != ours
    assert len(venue_ids[0]) == 36
    assert state.client_order_id == ours
    assert (await client.order(ours, "BTCUSDT")) is not None


async def test_clock_skew_resyncs_and_retries_once(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.clock_ahead_ms = 20_000  # the server's clock jumped after our sync: -1021 at first
    times_before = fake.requests.count(("GET", "/api/v3/time"))
    state = await client.submit(limit_buy())
    assert state.status == OrderStatus.ACCEPTED
    assert fake.requests.count(("POST", "/api/v3/order")) == 2  # refused, then accepted
    assert fake.requests.count(("GET", "/api/v3/time")) == times_before + 1
    assert len(fake.orders) == 1
    assert 19_000 < client.rest.offset_ms < 21_000


async def test_rate_limit_429_then_418_blocks_instead_of_retrying(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.statuses = [429, 418]
    fake.retry_after_s = "0.3"
    with pytest.raises(RateLimitError) as limited:
        await client.submit(limit_buy())
    assert limited.value.retry_after_s == 0.3
    sent = len(fake.requests)
    for _ in range(5):  # nothing goes out while we are told to wait
        with pytest.raises(RateLimitError, match="not sent"):
            await client.snapshot()
    assert len(fake.requests) == sent
    await asyncio.sleep(0.35)
    with pytest.raises(RateLimitError, match="banned"):
        await client.order(CID, "BTCUSDT")  # the server still answers 418
    assert len(fake.requests) == sent + 1
    assert not fake.orders  # the 429 was never an order


async def test_5xx_after_accept_is_unknown_then_lookup_finds_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.inject("POST", "/api/v3/order", 500, text="Internal error.", after_accept=True)
    with pytest.raises(OutcomeUnknownError, match="HTTP 500"):
        await client.submit(limit_buy())
    assert fake.requests.count(("POST", "/api/v3/order")) == 1  # never resubmitted
    found = await client.order(CID, "BTCUSDT")
    assert found is not None
    assert (found.client_order_id, found.status, found.qty) == (CID, OrderStatus.ACCEPTED, 0.5)


async def test_timeout_after_accept_is_unknown_then_lookup_finds_it(
    fake: FakeBinance, keys: None
) -> None:
    client = VENUE.client({**fake.settings, "request_timeout_s": 0.3})
    await client.start()
    try:
        fake.accept_then_delay_s = 1.0
        with pytest.raises(OutcomeUnknownError, match="may exist"):
            await client.submit(limit_buy())
        fake.accept_then_delay_s = 0.0
        assert (await client.order(CID, "BTCUSDT")) is not None
        assert fake.requests.count(("POST", "/api/v3/order")) == 1
    finally:
        await client.close()


async def test_snapshot_reads_cash_positions_and_open_orders(
    client: BinanceClient, fake: FakeBinance
) -> None:
    await client.submit(limit_buy())
    snapshot = await client.snapshot()
    # the fake's account: USDT 10,000 free + 500 locked; BTC 0.5; no ETH
    assert snapshot.cash == 10_500.0
    assert snapshot.positions == {"BTCUSDT": 0.5, "ETHUSDT": 0.0}
    assert [o.client_order_id for o in snapshot.open_orders] == [CID]


async def test_executions_partial_fills_duplicates_and_disorder_dedupe_exactly(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(limit_buy(qty=0.5, price=95.0))
        fake.duplicate_reports, fake.hold_reports = True, True
        fake.fill(CID, 0.1, 95.0)
        fake.fill(CID, 0.15, 94.0)
        fake.release_reports(reverse=True)  # out of order, each twice
        items = await fills.until(4)
    finally:
        await fills.close()
    unique = {e.trade_id: e for e in items}
    assert len(items) == 4
    assert len(unique) == 2
    assert sorted(e.qty for e in unique.values()) == [0.1, 0.15]
    assert {e.client_order_id for e in items} == {CID}
    # commission 0.1 % in USDT: 0.1×95×0.001 + 0.15×94×0.001 = 0.0236
    assert sum(e.commission for e in unique.values()) == pytest.approx(0.0236)
    state = await client.order(CID, "BTCUSDT")
    assert state is not None
    assert (state.status, state.filled_qty) == (OrderStatus.PARTIALLY_FILLED, 0.25)
    # (0.1×95 + 0.15×94) / 0.25 = 94.4
    assert state.avg_fill_price == pytest.approx(94.4)


async def test_executions_after_a_dropped_user_stream_are_backfilled(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(limit_buy())
        await fake.drop_user_stream()
        fake.fill(CID, 0.2, 95.0)  # nobody is listening: only REST can tell
        items = await fills.until(1)
    finally:
        await fills.close()
    assert fake.subscriptions == 2
    assert [(e.client_order_id, e.qty, e.price) for e in items] == [(CID, 0.2, 95.0)]
    assert ("GET", "/api/v3/myTrades") in fake.requests


async def test_recent_executions_after_a_restart_map_orders_to_client_ids(
    client: BinanceClient, fake: FakeBinance, keys: None
) -> None:
    await client.submit(limit_buy())
    trade = fake.fill(CID, 0.3, 95.0)
    restarted = VENUE.client(fake.settings)  # knows no order ids yet
    await restarted.start()
    try:
        fills = await restarted.recent_executions(0)
    finally:
        await restarted.close()
    assert [(f.trade_id, f.client_order_id, f.qty) for f in fills] == [
        (f"BTCUSDT:{trade['id']}", CID, 0.3)
    ]
    assert ("GET", "/api/v3/allOrders") in fake.requests


async def test_a_plain_live_sequence_as_the_live_broker_drives_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """submit → partial fills on the stream → cancel → snapshot."""
    fills = Fills(client)
    try:
        await subscribed(fake)
        state = await client.submit(limit_buy(qty=0.4, price=100.0))
        assert state.status == OrderStatus.ACCEPTED
        fake.fill(CID, 0.1, 100.0)
        fake.fill(CID, 0.1, 100.0)
        items = await fills.until(2)
        await client.cancel(CID, "BTCUSDT")
        snapshot = await client.snapshot()
    finally:
        await fills.close()
    assert sum(e.qty for e in {e.trade_id: e for e in items}.values()) == pytest.approx(0.2)
    assert snapshot.open_orders == []
    assert snapshot.positions["BTCUSDT"] == pytest.approx(0.7)  # 0.5 held + 0.2 bought
    # 10,500 − 0.2 × 100 − 0.02 commission
    assert snapshot.cash == pytest.approx(10_479.98)
    final = await client.order(CID, "BTCUSDT")
    assert final is not None
    assert (final.status, final.filled_qty) == (OrderStatus.CANCELLED, 0.2)


def test_client_without_keys_names_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    with pytest.raises(ConfigError, match="BINANCE_API_SECRET"):
        VENUE.client({"symbols": ["BTCUSDT"]})


async def test_no_secret_in_any_log_line_or_error(
    fake: FakeBinance, keys: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json=True)
    errors: list[BaseException] = []
    client = VENUE.client({**fake.settings, "request_timeout_s": 0.3})
    await client.start()
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(limit_buy())
        fake.fill(CID, 0.1)
        await fills.until(1)
        fake.clock_ahead_ms = 30_000
        await client.snapshot()
        for fault in ("dup", "500", "429"):
            if fault == "500":
                fake.inject("POST", "/api/v3/order", 500, text="oops", after_accept=True)
            fake.statuses = [429] if fault == "429" else []
            fake.retry_after_s = "0"
            try:
                await client.submit(limit_buy())
            except Exception as err:
                errors.append(err)
        fake.api_secret = "another-secret"  # now every signature is refused
        try:
            await client.snapshot()
        except Exception as err:
            errors.append(err)
    finally:
        await fills.close()
        await client.close()
        structlog.reset_defaults()  # the JSON logger holds capsys's stdout, closed after this test
    out = capsys.readouterr().out
    texts = [out, repr(client), repr(client.settings), *(str(e) for e in errors)]
    texts += [repr(e.__cause__) for e in errors if e.__cause__ is not None]
    assert len(errors) == 4
    assert "-1022" in str(errors[-1])
    for text in texts:
        assert API_SECRET not in text
        assert API_KEY not in text
    assert "order_submitted" in out
