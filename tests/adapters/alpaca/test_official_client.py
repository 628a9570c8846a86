"""alpaca-py, Alpaca's official SDK, drives our fake on 127.0.0.1: if the SDK and the fake
disagree, the fake is wrong. Every client takes a base URL: ``TradingClient(url_override=)``,
``StockHistoricalDataClient(url_override=)``, ``TradingStream(url_override=)``,
``StockDataStream(url_override=)`` (msgpack, as the SDK speaks it). The SDK's REST clients are
synchronous (requests), so they run in a thread while the fake serves on the test's loop.

Account activities have no method in alpaca-py's ``TradingClient`` (alpacahq/alpaca-py#232,
open); they are read with the SDK's own ``TradingClient.get`` (its auth, retries, errors).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from tests.adapters.alpaca.fake_venue import KEY_ID, MINUTE0, SECRET, FakeAlpaca, minute_ns

with warnings.catch_warnings():  # alpaca-py imports websockets.legacy, deprecated upstream
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.live import StockDataStream
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import (
        OrderClass,
        OrderSide,
        OrderStatus,
        OrderType,
        QueryOrderStatus,
        TimeInForce,
    )
    from alpaca.trading.requests import (
        GetOrderByIdRequest,
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        StopLossRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )
    from alpaca.trading.stream import TradingStream

pytestmark = pytest.mark.filterwarnings(
    "ignore:websockets.legacy is deprecated:DeprecationWarning",
    "ignore:websockets.client.WebSocketClientProtocol is deprecated:DeprecationWarning",
)
T = TypeVar("T")


def base(fake: FakeAlpaca) -> str:
    return f"http://127.0.0.1:{fake.port}"


def trading(fake: FakeAlpaca) -> TradingClient:
    return TradingClient(KEY_ID, SECRET, paper=True, url_override=base(fake))


async def call(fn: Callable[..., T], *args: Any) -> T:
    """The SDK's blocking call, in a thread, while the fake answers on this loop."""
    return await asyncio.to_thread(fn, *args)


def limit(cid: str, qty: float = 10, price: float = 126.5, tif: Any = TimeInForce.DAY) -> Any:
    return LimitOrderRequest(
        symbol="AAPL",
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=tif,
        limit_price=price,
        client_order_id=cid,
    )


async def test_official_client_reads_the_account(fake: FakeAlpaca) -> None:
    account = await call(trading(fake).get_account)
    assert (account.cash, account.currency, account.status.value) == ("100000.00", "USD", "ACTIVE")


async def test_official_client_places_queries_and_cancels_by_id_and_client_id(
    fake: FakeAlpaca,
) -> None:
    client = trading(fake)
    placed = await call(client.submit_order, limit("sdk-1"))
    assert (placed.client_order_id, placed.status) == ("sdk-1", OrderStatus.ACCEPTED)
    assert (placed.qty, placed.limit_price, placed.time_in_force) == ("10", "126.5", "day")
    by_cid = await call(client.get_order_by_client_id, "sdk-1")
    by_id = await call(client.get_order_by_id, placed.id)
    assert by_cid.id == by_id.id == placed.id
    opened = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.client_order_id for o in opened] == ["sdk-1"]
    await call(client.cancel_order_by_id, placed.id)
    assert await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
    closed = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [(o.client_order_id, o.status) for o in closed] == [("sdk-1", OrderStatus.CANCELED)]
    every = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1))
    assert len(every) == 1  # the limit is honoured
    with pytest.raises(APIError) as caught:  # cancelling twice: 422 not cancelable
        await call(client.cancel_order_by_id, placed.id)
    assert caught.value.status_code == 422


async def test_official_client_sees_positions_after_fills(fake: FakeAlpaca) -> None:
    client = trading(fake)
    order = await call(client.submit_order, limit("sdk-2"))
    fake.fill(str(order.id), 4, 126.48)
    (position,) = await call(client.get_all_positions)
    assert (position.symbol, position.qty, position.side.value) == ("AAPL", "4", "long")
    rows = await call(client.get, "/account/activities/FILL")
    assert [(r["qty"], r["price"], r["cum_qty"]) for r in rows] == [("4", "126.48", "4")]
    fee = fake.charge_fee(0.02)
    fees = await call(client.get, "/account/activities", {"activity_types": "FEE,CFEE"})
    assert [(r["id"], r["net_amount"]) for r in fees] == [(fee["id"], "-0.02")]


@pytest.mark.parametrize(
    ("request_of", "message"),
    [
        # https://docs.alpaca.markets/docs/fractional-trading: fractional orders are DAY only
        (lambda: limit("sdk-f", qty=0.5, tif=TimeInForce.GTC), "fractional orders must be DAY"),
        # https://docs.alpaca.markets/docs/orders-at-alpaca: no sub-penny limit at/above $1
        (lambda: limit("sdk-p", price=126.505), "sub-penny increment"),
        (lambda: limit("sdk-q", price=0.12345), "sub-penny increment"),  # $0.0001 below $1
        # https://docs.alpaca.markets/reference/postorder: client_order_id up to 48 characters
        (lambda: limit("x" * 49), "no more than 48 characters"),
    ],
)
async def test_the_fake_refuses_what_alpaca_refuses_to_the_official_client(
    fake: FakeAlpaca, request_of: Callable[[], Any], message: str
) -> None:
    with pytest.raises(APIError) as caught:
        await call(trading(fake).submit_order, request_of())
    assert caught.value.status_code == 422
    assert message in str(caught.value)
    assert fake.orders == {}


async def test_the_fake_refuses_fractions_of_a_non_fractionable_asset_and_reused_ids(
    fake: FakeAlpaca,
) -> None:
    fake.fractionable["SPY"] = False
    client = trading(fake)
    spy = MarketOrderRequest(symbol="SPY", qty=0.5, side=OrderSide.BUY, time_in_force="day")
    with pytest.raises(APIError, match="not fractionable"):
        await call(client.submit_order, spy)
    await call(client.submit_order, limit("sdk-dup"))
    with pytest.raises(APIError, match="client_order_id must be unique"):
        await call(client.submit_order, limit("sdk-dup"))
    assert len(fake.orders) == 1


async def test_the_fake_refuses_an_unknown_order_status_filter(fake: FakeAlpaca) -> None:
    with pytest.raises(APIError) as caught:
        await call(trading(fake).get, "/orders", {"status": "working"})
    assert caught.value.status_code == 422


async def test_official_data_client_pages_through_the_bars(fake: FakeAlpaca) -> None:
    for i in range(3):
        await fake.publish(i)  # 6 bars; the fake pages by 3
    client = StockHistoricalDataClient(KEY_ID, SECRET, url_override=base(fake))
    request = StockBarsRequest(
        symbol_or_symbols=["AAPL", "SPY"],
        timeframe=TimeFrame.Minute,
        start=MINUTE0,
        feed=DataFeed.IEX,
    )
    bars = (await call(client.get_stock_bars, request)).data
    assert {s: len(b) for s, b in bars.items()} == {"AAPL": 3, "SPY": 3}
    first = bars["SPY"][0]
    expected = fake.bar("SPY", 0)
    assert (first.open, first.close, first.volume) == (expected["o"], expected["c"], expected["v"])
    assert int(first.timestamp.timestamp()) * 10**9 == minute_ns(0)
    assert len(fake.bar_requests) == 2  # followed next_page_token


async def test_official_trading_stream_authenticates_listens_and_gets_fills(
    fake: FakeAlpaca,
) -> None:
    """alpaca-py sends the legacy ``authenticate`` action; the fake answers both spellings.
    After the documented error frame and the close, the SDK reconnects by itself."""
    updates: list[Any] = []
    filled = asyncio.Event()
    stream = TradingStream(
        KEY_ID, SECRET, paper=True, url_override=f"ws://127.0.0.1:{fake.port}/stream"
    )

    async def on_update(update: Any) -> None:
        updates.append(update)
        if update.event == "fill":
            filled.set()

    stream.subscribe_trade_updates(on_update)
    runner = asyncio.create_task(stream._run_forever())
    try:
        await asyncio.wait_for(fake.trade_listening.wait(), 10.0)
        order = await call(trading(fake).submit_order, limit("sdk-s"))
        await fake.send_updates(fake.fill(str(order.id), 10, 126.5))
        await asyncio.wait_for(filled.wait(), 10.0)
        fill = next(u for u in updates if u.event == "fill")
        assert (fill.qty, fill.price, fill.order.client_order_id) == (10.0, 126.5, "sdk-s")
        assert fill.execution_id is not None
        await fake.trade_error("internal server error")
        await asyncio.wait_for(fake.trade_listening.wait(), 15.0)  # the SDK came back
        assert fake.trade_connections == 2
        assert fake.refused_frames == 0  # the SDK sends text frames, as ours does
    finally:
        await stream.stop_ws()
        await asyncio.wait_for(runner, 10.0)


async def test_official_data_stream_speaks_msgpack_with_the_fake(fake: FakeAlpaca) -> None:
    bars: list[Any] = []
    both = asyncio.Event()
    stream = StockDataStream(KEY_ID, SECRET, url_override=f"ws://127.0.0.1:{fake.port}/v2/iex")

    async def on_bar(bar: Any) -> None:
        bars.append(bar)
        if len(bars) == 2:
            both.set()

    stream.subscribe_bars(on_bar, "AAPL", "SPY")
    runner = asyncio.create_task(stream._run_forever())
    try:
        await asyncio.wait_for(fake.subscribed.wait(), 10.0)
        assert fake.subscriptions[-1]["bars"] == ["AAPL", "SPY"]
        await fake.publish(0)
        await asyncio.wait_for(both.wait(), 10.0)
        spy = next(b for b in bars if b.symbol == "SPY")
        assert (spy.open, spy.close) == (fake.bar("SPY", 0)["o"], fake.bar("SPY", 0)["c"])
        assert spy.timestamp == datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
        assert fake.refused_frames == 0  # binary msgpack frames, as the SDK asked for
    finally:
        await stream.stop_ws()
        await asyncio.wait_for(runner, 10.0)


# -- order classes and trailing stops (https://docs.alpaca.markets/docs/orders-at-alpaca) ------


def market_bracket(take_profit: float, stop_loss: float) -> Any:
    return MarketOrderRequest(
        symbol="AAPL",
        qty=10,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.GTC,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=take_profit),
        stop_loss=StopLossRequest(stop_price=stop_loss),
        client_order_id="sdk-bracket",
    )


async def test_official_client_bracket_legs_are_held_then_work_then_cancel_each_other(
    fake: FakeAlpaca,
) -> None:
    await fake.publish(0)  # the base price of a market entry: AAPL's last close
    base = fake.last_price("AAPL")
    assert base is not None
    client = trading(fake)
    target, stop_loss = round(base + 5, 2), round(base - 5, 2)
    placed = await call(client.submit_order, market_bracket(target, stop_loss))
    assert (placed.order_class, len(placed.legs or [])) == (OrderClass.BRACKET, 2)
    assert {leg.status for leg in placed.legs or []} == {OrderStatus.HELD}
    assert {leg.side for leg in placed.legs or []} == {OrderSide.SELL}
    await fake.report_fill(str(placed.id), 10, base)
    nested = GetOrderByIdRequest(nested=True)
    entry = await call(client.get_order_by_id, placed.id, nested)
    legs = {leg.type: leg for leg in entry.legs or []}
    assert entry.status is OrderStatus.FILLED
    assert {leg.status for leg in legs.values()} == {OrderStatus.NEW}  # the entry filled
    await fake.report_fill(str(legs[OrderType.STOP].id), 10, stop_loss)
    target = await call(client.get_order_by_id, legs[OrderType.LIMIT].id)
    assert target.status is OrderStatus.CANCELED  # the other exit, cancelled by the venue
    assert await call(client.get_all_positions) == []  # in at 10, out at 10: flat


async def test_official_client_bracket_target_not_above_the_base_price_is_refused(
    fake: FakeAlpaca,
) -> None:
    await fake.publish(0)
    base = fake.last_price("AAPL")
    assert base is not None
    with pytest.raises(APIError, match=r"take_profit.limit_price must be >= base_price \+ 0.01"):
        await call(trading(fake).submit_order, market_bracket(round(base, 2), round(base - 5, 2)))
    assert fake.orders == {}


async def test_official_client_places_an_oco_as_the_take_profit_limit_with_the_stop_leg(
    fake: FakeAlpaca,
) -> None:
    oco = LimitOrderRequest(  # no top-level limit price: alpaca-py allows it for oco only
        symbol="AAPL",
        qty=10,
        side=OrderSide.SELL,
        time_in_force=TimeInForce.GTC,
        order_class=OrderClass.OCO,
        take_profit=TakeProfitRequest(limit_price=130),
        stop_loss=StopLossRequest(stop_price=120),
        client_order_id="sdk-oco",
    )
    placed = await call(trading(fake).submit_order, oco)
    assert (placed.type, placed.limit_price, placed.status) == (
        OrderType.LIMIT,
        "130",
        OrderStatus.ACCEPTED,
    )
    (stop,) = placed.legs or []
    assert (stop.type, stop.stop_price, stop.status) == (OrderType.STOP, "120", OrderStatus.NEW)


async def test_official_client_trailing_stop_follows_the_high_water_mark(fake: FakeAlpaca) -> None:
    trailing = TrailingStopOrderRequest(
        symbol="AAPL", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
        trail_percent=1.0, client_order_id="sdk-trail",
    )  # fmt: skip
    placed = await call(trading(fake).submit_order, trailing)
    assert (placed.type, placed.trail_percent, placed.stop_price) == (
        OrderType.TRAILING_STOP,
        "1",
        None,
    )
    for i in range(2):
        await fake.match("AAPL", fake.bar("AAPL", i))
    order = await call(trading(fake).get_order_by_id, placed.id)
    high = fake.bar("AAPL", 1)["h"]  # the higher of the two highs: the mark
    assert float(order.hwm) == pytest.approx(high)
    assert float(order.stop_price) == pytest.approx(high * 0.99, abs=1e-4)
    assert order.status is OrderStatus.ACCEPTED  # no bar went 1 % below its high
