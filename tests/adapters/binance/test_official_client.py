"""Binance's official Python SDK (``binance-sdk-spot``) pointed at our fake on 127.0.0.1: it must
understand every answer (its pydantic models parse them without falling back), and the fake
must refuse it where Binance would. If the two disagree, the fake is wrong.

REST (account, exchangeInfo, klines, ticker, place / query / list / cancel, myTrades,
order/test), the WebSocket API user data stream (``userDataStream.subscribe.signature``, its
events, ``serverShutdown``) and the WebSocket market streams (kline, live SUBSCRIBE) all take
a base URL in the SDK's configuration; nothing had to be left out. The SDK's REST client is
synchronous (requests): it runs in a thread while the fake serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common.errors import (
    BadRequestError,
    RateLimitBanError,
    TooManyRequestsError,
    UnauthorizedError,
)
from binance_sdk_spot.rest_api.models import enums
from binance_sdk_spot.spot import Spot

from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance

# the SDK passes aiohttp a float ``timeout`` for its WebSocket API connection (its call, not ours)
pytestmark = pytest.mark.filterwarnings(
    "ignore:parameter 'timeout' of type 'float' is deprecated:DeprecationWarning"
)

Side, Type, Tif = enums.NewOrderSideEnum, enums.NewOrderTypeEnum, enums.NewOrderTimeInForceEnum
Resp = enums.NewOrderNewOrderRespTypeEnum


def spot_for(fake: FakeBinance, *, secret: str = API_SECRET, key: str = API_KEY) -> Spot:
    port = fake.port
    return Spot(
        config_rest_api=ConfigurationRestAPI(
            api_key=key,
            api_secret=secret,
            base_path=f"http://127.0.0.1:{port}",
            retries=0,
            timeout=3000,
        ),
        config_ws_api=ConfigurationWebSocketAPI(
            api_key=key,
            api_secret=secret,
            stream_url=f"ws://127.0.0.1:{port}/ws-api/v3",
            reconnect_delay=100,
            timeout=3000,
        ),
        config_ws_streams=ConfigurationWebSocketStreams(
            stream_url=f"ws://127.0.0.1:{port}", reconnect_delay=100
        ),
    )


@pytest.fixture
def spot(fake: FakeBinance) -> Spot:
    return spot_for(fake)


@pytest.fixture(autouse=True)
def sdk_parses_every_answer(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """The SDK logs (and falls back to raw dicts) when an answer does not fit its models."""
    caplog.set_level(logging.WARNING)
    yield
    misfits = [
        r.getMessage()
        for r in caplog.records
        if "did not match" in r.getMessage() or "Failed to parse" in r.getMessage()
    ]
    assert misfits == []


async def call(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """One SDK REST call (synchronous) off the loop; its parsed model."""
    response = await asyncio.to_thread(fn, **kwargs)
    return response.data()


async def until(probe: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not probe():  # noqa: ASYNC110 (a probe of the fake's counters)
            await asyncio.sleep(0.02)


async def test_official_client_reads_account_rules_klines_and_prices(
    spot: Spot, fake: FakeBinance
) -> None:
    rest = spot.rest_api
    account = await call(rest.get_account)
    assert {(b.asset, b.free, b.locked) for b in account.balances} == {
        ("USDT", "10000.00000000", "500.00000000"),
        ("BTC", "0.50000000", "0.00000000"),
    }
    info = await call(rest.exchange_info, symbols=["BTCUSDT", "LTCBTC"])
    assert [s.symbol for s in info.symbols] == ["BTCUSDT", "LTCBTC"]
    lot = next(
        f.actual_instance
        for f in info.symbols[0].filters
        if f.actual_instance.filter_type == "LOT_SIZE"
    )
    assert (lot.step_size, lot.min_qty) == ("0.00001000", "0.00001000")
    fake.published = 3
    rows = await call(rest.klines, symbol="BTCUSDT", interval=enums.KlinesIntervalEnum.INTERVAL_1m)
    # bar k of the fake opens at 100 + k (BTCUSDT); the 4th row is the kline still forming
    assert [(row[0], row[1], row[4]) for row in rows] == [
        (fake.t0_ms + k * 60_000, f"{100 + k:.8f}", f"{101 + k:.8f}") for k in range(4)
    ]
    price = await call(rest.ticker_price, symbol="BNBUSDT")
    assert (price.actual_instance.symbol, price.actual_instance.price) == (
        "BNBUSDT",
        "600.00000000",
    )


async def test_official_client_places_queries_lists_cancels_and_reads_trades(
    spot: Spot, fake: FakeBinance
) -> None:
    rest = spot.rest_api
    placed = await call(
        rest.new_order,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=Type.LIMIT,
        time_in_force=Tif.GTC,
        quantity=0.5,
        price=95.0,
        new_client_order_id="sdk-1",
    )
    assert (placed.status, placed.orig_qty, placed.fills) == ("NEW", "0.50000000", [])
    found = await call(rest.get_order, symbol="BTCUSDT", orig_client_order_id="sdk-1")
    assert (found.order_id, found.price) == (placed.order_id, "95.00000000")
    assert [o.client_order_id for o in await call(rest.get_open_orders, symbol="BTCUSDT")] == [
        "sdk-1"
    ]
    cancelled = await call(rest.delete_order, symbol="BTCUSDT", orig_client_order_id="sdk-1")
    assert (cancelled.status, cancelled.orig_client_order_id) == ("CANCELED", "sdk-1")
    assert await call(rest.get_open_orders, symbol="BTCUSDT") == []
    bought = await call(
        rest.new_order,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=Type.MARKET,
        quantity=0.25,
        new_client_order_id="sdk-2",
    )
    # FULL (MARKET's default): one fill at the fake's 100.0, 0.1 % fee in USDT = 0.025
    assert [(f.price, f.qty, f.commission, f.commission_asset) for f in bought.fills] == [
        ("100.00000000", "0.25000000", "0.02500000", "USDT")
    ]
    trades = await call(rest.my_trades, symbol="BTCUSDT")
    assert [(t.order_id, t.qty, t.is_buyer) for t in trades] == [
        (bought.order_id, "0.25000000", True)
    ]
    orders = await call(rest.all_orders, symbol="BTCUSDT")
    assert [o.status for o in orders] == ["CANCELED", "FILLED"]
    assert (
        await call(
            rest.order_test, symbol="BTCUSDT", side=Side.SELL, type=Type.MARKET, quantity=0.1
        )
        is not None
    )
    assert len(fake.orders) == 2  # order/test placed nothing


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (Resp.ACK, {"symbol", "order_id", "order_list_id", "client_order_id", "transact_time"}),
        (Resp.RESULT, {"status", "executed_qty", "cummulative_quote_qty"}),
        (Resp.FULL, {"status", "fills"}),
    ],
)
async def test_official_client_parses_each_answer_shape(
    kind: Any, fields: set[str], spot: Spot
) -> None:
    answer = await call(
        spot.rest_api.new_order,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=Type.MARKET,
        quantity=0.1,
        new_order_resp_type=kind,
    )
    present = {name for name, value in answer if value is not None}
    assert fields <= present
    if kind is Resp.ACK:
        assert present.isdisjoint({"status", "fills"})


async def test_official_client_is_refused_what_binance_refuses(
    spot: Spot, fake: FakeBinance
) -> None:
    rest = spot.rest_api
    market = {"symbol": "BTCUSDT", "side": Side.BUY, "type": Type.MARKET}
    cases = [
        (market | {"quantity": 0.1 + 0.2}, -1111),  # the SDK sends str(float): 0.30000000000000004
        (market | {"quantity": 0.123456789}, -1111),  # nine decimals: never filled
        (market | {"quantity": 0.100015}, -1013),  # LOT_SIZE step 0.00001
        (market | {"quantity": 0.000015}, -1100),  # str(0.000015) is "1.5e-05": not a decimal
        (market | {"quantity": 121}, -1013),  # MARKET_LOT_SIZE maxQty 120
        (market | {"quantity": 0.01}, -1013),  # NOTIONAL: 0.01 × 100 < 5
    ]
    for kwargs, code in cases:
        with pytest.raises(BadRequestError) as refused:
            await call(rest.new_order, **kwargs)
        assert refused.value.args[0] == code, kwargs
    assert not fake.trades
    limit = {
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "type": Type.LIMIT,
        "time_in_force": Tif.GTC,
        "quantity": 0.5,
        "price": 95.0,
        "new_client_order_id": "dup",
    }
    await call(rest.new_order, **limit)
    with pytest.raises(BadRequestError, match="Duplicate order sent"):
        await call(rest.new_order, **limit)
    with pytest.raises(BadRequestError, match="Unknown order sent"):
        await call(rest.delete_order, symbol="BTCUSDT", orig_client_order_id="never")
    with pytest.raises(BadRequestError, match="Order does not exist"):
        await call(rest.get_order, symbol="BTCUSDT", orig_client_order_id="never")
    with pytest.raises(BadRequestError, match="Signature for this request is not valid"):
        await call(spot_for(fake, secret="wrong").rest_api.get_account)
    with pytest.raises(UnauthorizedError, match="Invalid API-key"):
        await call(spot_for(fake, key="wrong").rest_api.get_account)
    fake.statuses = [429, 418]
    with pytest.raises(TooManyRequestsError):
        await call(rest.get_account)
    with pytest.raises(RateLimitBanError):
        await call(rest.get_account)


async def test_official_client_user_data_stream_survives_server_shutdown(
    spot: Spot, fake: FakeBinance
) -> None:
    connection = await spot.websocket_api.create_connection()
    try:
        subscribed = await connection.user_data_stream_subscribe_signature()
        assert subscribed.response.data().result.subscription_id == 0
        events: list[Any] = []
        subscribed.stream.on("message", events.append)
        fake.exchange.place(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.25",
                "newClientOrderId": "sdk-3",
            }
        )
        await until(lambda: len(events) == 2)  # NEW, then TRADE
        report = events[1].actual_instance
        assert (report.x, report.X, report.l, report.L, report.N) == (
            "TRADE",
            "FILLED",
            "0.25000000",
            "100.00000000",
            "USDT",
        )
        fake.server_shutdown_user_stream()  # the SDK reconnects (after its own 5 s) and
        await until(lambda: fake.subscriptions == 2)  # re-subscribes by itself
        assert fake.ws_api_connections == 2
    finally:
        await connection.close_connection()


async def test_official_client_kline_stream_live_subscribe(spot: Spot, fake: FakeBinance) -> None:
    streams = await spot.websocket_streams.create_connection()
    try:
        kline = await streams.kline(symbol="btcusdt", interval="1m")
        bars: list[Any] = []
        kline.on("message", bars.append)
        fake.start_clock()
        await until(lambda: any(bar.k.x for bar in bars))
    finally:
        await streams.close_connection()
    closed = next(bar for bar in bars if bar.k.x)
    assert (closed.s, closed.k.t, closed.k.o, closed.k.c) == (
        "BTCUSDT",
        fake.t0_ms,
        "100.00000000",
        "101.00000000",
    )
    assert {bar.s for bar in bars} == {"BTCUSDT"}  # ETHUSDT is not subscribed


# -- order lists (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints)


async def test_official_client_places_an_oco_and_the_other_order_expires_when_one_trades(
    spot: Spot, fake: FakeBinance
) -> None:
    placed = await call(
        spot.rest_api.order_list_oco,
        symbol="BTCUSDT",
        side=enums.OrderListOcoSideEnum.SELL,
        quantity=0.1,
        above_type=enums.OrderListOcoAboveTypeEnum.LIMIT_MAKER,
        above_price=110.0,
        above_client_order_id="sdk-target",
        below_type=enums.OrderListOcoBelowTypeEnum.STOP_LOSS,
        below_stop_price=95.0,
        below_client_order_id="sdk-stop",
        list_client_order_id="sdk-list",
    )
    assert (placed.contingency_type, placed.list_client_order_id) == ("OCO", "sdk-list")
    assert [(r.client_order_id, r.type, r.status) for r in placed.order_reports] == [
        ("sdk-target", "LIMIT_MAKER", "NEW"),
        ("sdk-stop", "STOP_LOSS", "NEW"),
    ]
    fake.fill("sdk-stop", "0.1", "95")
    stopped = await call(spot.rest_api.get_order, symbol="BTCUSDT", orig_client_order_id="sdk-stop")
    target = await call(
        spot.rest_api.get_order, symbol="BTCUSDT", orig_client_order_id="sdk-target"
    )
    assert (stopped.status, target.status) == ("FILLED", "EXPIRED")
    assert stopped.order_list_id == target.order_list_id == placed.order_list_id


async def test_official_client_places_an_otoco_whose_pair_waits_for_the_working_fill(
    spot: Spot, fake: FakeBinance
) -> None:
    fake.balances = {"USDT": [10_000.0]}  # no BTC yet: the pending sells spend only when placed
    placed = await call(
        spot.rest_api.order_list_otoco,
        symbol="BTCUSDT",
        working_type=enums.OrderListOtocoWorkingTypeEnum.LIMIT,
        working_side=enums.OrderListOtocoWorkingSideEnum.BUY,
        working_price=100.0,
        working_quantity=0.1,
        working_time_in_force=enums.OrderListOtocoWorkingTimeInForceEnum.GTC,
        working_client_order_id="sdk-entry",
        pending_side=enums.OrderListOtocoPendingSideEnum.SELL,
        pending_quantity=0.1,
        pending_above_type=enums.OrderListOtocoPendingAboveTypeEnum.LIMIT_MAKER,
        pending_above_price=110.0,
        pending_above_client_order_id="sdk-target",
        pending_below_type=enums.OrderListOtocoPendingBelowTypeEnum.STOP_LOSS,
        pending_below_stop_price=95.0,
        pending_below_client_order_id="sdk-stop",
    )
    assert [(r.client_order_id, r.status) for r in placed.order_reports] == [
        ("sdk-entry", "NEW"),
        ("sdk-target", "PENDING_NEW"),
        ("sdk-stop", "PENDING_NEW"),
    ]
    fake.fill("sdk-entry", "0.1", "100")
    open_ids = {
        o.client_order_id for o in await call(spot.rest_api.get_open_orders, symbol="BTCUSDT")
    }
    assert open_ids == {"sdk-target", "sdk-stop"}  # placed once the working order filled


async def test_official_client_oco_prices_in_the_wrong_relation_are_refused(
    spot: Spot, fake: FakeBinance
) -> None:
    with pytest.raises(BadRequestError, match="relationship of the prices") as refused:
        await call(
            spot.rest_api.order_list_oco,
            symbol="BTCUSDT",
            side=enums.OrderListOcoSideEnum.SELL,
            quantity=0.1,
            above_type=enums.OrderListOcoAboveTypeEnum.LIMIT_MAKER,
            above_price=99.0,  # a SELL's limit must lie above the last price (100)
            below_type=enums.OrderListOcoBelowTypeEnum.STOP_LOSS,
            below_stop_price=95.0,
        )
    assert refused.value.args[0] == -2010
    assert fake.orders == {}
