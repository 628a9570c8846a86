"""The user data stream against the fake's WebSocket API, run as the daemon runs it (under the
real supervisor, ``executions()`` called again after it raises): every way a subscription ends
(serverShutdown, eventStreamTerminated, the 24 h cut) and every refused subscribe, each
followed by the fills of the gap over REST; a refused key is a ConfigError: the stream is lost
at once (the daemon's gate then goes to ``on_task_lost``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.binance import VENUE, BinanceClient
from tests.adapters.binance.conftest import Fills, subscribed
from tests.adapters.binance.fake_binance import FakeBinance
from tests.adapters.binance.recorded import payload
from tradeloop.errors import ConfigError
from tradeloop.events import OrderType, Side
from tradeloop.venue import VenueOrder

CID = "tl" + "0123456789abcdef0123456789abcd"
BUY = VenueOrder(CID, "BTCUSDT", Side.BUY, 0.5, OrderType.LIMIT, limit_price=95.0)


async def lost_fill(fake: FakeBinance, qty: float = 0.2) -> None:
    """A fill whose report is lost with the connection: only GET /api/v3/myTrades can tell."""
    fake.hold_reports = True
    fake.fill(CID, qty, 95.0)
    fake.hold_reports = False
    fake._held.clear()


@pytest.fixture
async def fills(client: BinanceClient, fake: FakeBinance) -> AsyncIterator[Fills]:
    stream = Fills(client)
    await subscribed(fake)
    await client.submit(BUY)
    yield stream
    await stream.close()


async def test_user_stream_server_shutdown_reconnects_and_backfills(
    fills: Fills, fake: FakeBinance
) -> None:
    await lost_fill(fake)
    fake.server_shutdown_user_stream()
    items = await fills.until(1)
    assert fake.subscriptions == 2
    assert [(e.client_order_id, e.qty, e.price) for e in items] == [(CID, 0.2, 95.0)]
    assert ("GET", "/api/v3/myTrades") in fake.requests


async def test_user_stream_terminated_resubscribes(fills: Fills, fake: FakeBinance) -> None:
    await lost_fill(fake, 0.1)
    fake.terminate_user_stream()
    items = await fills.until(1)
    assert fake.subscriptions == 2
    assert [e.qty for e in items] == [0.1]


async def test_user_stream_24h_cut_reconnects_and_backfills(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.max_connection_age_s = 0.5  # Binance's 24 h, scaled down
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(BUY)
        await lost_fill(fake)
        items = await fills.until(1)
        await subscribed(fake, 2)
    finally:
        await fills.close()
    assert fake.ws_api_connections >= 2
    assert [e.qty for e in items] == [0.2]


async def test_user_stream_is_renewed_before_its_age_limit(fake: FakeBinance, keys: None) -> None:
    """The client ends an aging connection itself (ConnectionLostError "renewing"); called
    again, it subscribes afresh before Binance's cut."""
    client = VENUE.client({**fake.settings, "max_connection_age_s": 0.3})
    await client.start()
    fills = Fills(client)
    try:
        await subscribed(fake, 2)  # renewed by the client, not cut by the server
    finally:
        await fills.close()
        await client.close()
    assert fills.error is None


def ws_refusal(status: int, code: int, msg: str, **data: int) -> dict[str, object]:
    frame = payload("ws_api_error.json")
    frame.update(
        status=status, error={"code": code, "msg": msg, **({"data": data} if data else {})}
    )
    return frame


SKEW = "Timestamp for this request is outside of the recvWindow."
BUS = "An unexpected response was received from the message bus. Execution status unknown."
BANNED = "Way too much request weight used; IP banned until 1300."


@pytest.mark.parametrize(
    ("case", "frame"),
    [
        pytest.param("-1021", ws_refusal(400, -1021, SKEW), id="-1021"),
        pytest.param("5xx", ws_refusal(503, -1006, BUS), id="5xx"),
        pytest.param(
            "418", ws_refusal(418, -1003, BANNED, serverTime=1_000, retryAfter=1_300), id="418"
        ),
    ],
)
async def test_user_stream_subscribe_refusal(
    case: str, frame: dict[str, object], client: BinanceClient, fake: FakeBinance
) -> None:
    fake.ws_api_answers = [frame]
    synced = fake.requests.count(("GET", "/api/v3/time"))
    started = asyncio.get_running_loop().time()
    fills = Fills(client)
    try:
        await subscribed(fake)  # the next subscribe is accepted
    finally:
        await fills.close()
    assert fake.ws_api_connections == 2
    assert fills.error is None
    assert fills.restarts == 1  # the refused subscribe raised; executions() was called again
    if case == "-1021":  # the clock was resynced before subscribing again
        assert fake.requests.count(("GET", "/api/v3/time")) == synced + 1
    if case == "418":  # held until retryAfter − serverTime = 0.3 s
        assert asyncio.get_running_loop().time() - started >= 0.3


async def test_user_stream_subscribe_refused_key_is_fatal_config(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.ws_api_answers = [
        ws_refusal(401, -2015, "Invalid API-key, IP, or permissions for action.")
    ]
    fills = Fills(client)
    async with asyncio.timeout(5):
        while fills.error is None:  # noqa: ASYNC110 (a probe)
            await asyncio.sleep(0.01)
    await fills.close()
    assert fills.error is not None
    assert fills.error.startswith(f"{ConfigError.__name__}: ")  # lost at once, not retried
    assert "-2015" in fills.error
    assert "Fix: " in fills.error
    assert fake.ws_api_connections == 1  # no retry can fix a key
