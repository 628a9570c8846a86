"""Binance's order lists and trailing stops: the request params (read against the documented
parameters of orderList/oco, /oto, /otoco and trailingDelta by hand), what the fake refuses
as Binance does, and the real ``LiveBroker`` trading a native bracket (OTOCO) and an OCO
through ``BinanceClient``: each leg's fill comes back under its own client order id and the
venue expires the other leg."""

from __future__ import annotations

import pytest
from adapters.binance.order_lists import list_params, takes, trailing_params
from adapters.binance.orders import ClientIds

from adapters.binance import BinanceClient
from tests.adapters.binance.conftest import Fills, subscribed
from tests.adapters.binance.fake_binance import FakeBinance
from tradeloop.broker.instruments import InstrumentRules, decimal_of
from tradeloop.broker.live import LiveBroker
from tradeloop.broker.orders import OrderRequest
from tradeloop.errors import OrderRejectedError
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.portfolio import Position
from tradeloop.venue import VenueOrder

RULES = InstrumentRules(
    "BTCUSDT",
    qty_step=decimal_of(0.00001),
    price_ticks=((decimal_of(0), decimal_of(0.01)),),
)


def group(kind: str, **changes: object) -> VenueOrder:
    fields: dict[str, object] = {
        "client_order_id": "tl-entry",
        "asset_id": "BTCUSDT",
        "side": Side.BUY,
        "qty": 0.1,
        "order_type": OrderType.LIMIT,
        "limit_price": 100.0,
        "order_class": kind,
        "take_profit_limit": 110.0,
        "stop_loss_stop": 95.0,
        "leg_client_order_ids": ("tl-stop", "tl-target"),
        "list_client_order_id": "tl-entry-list",
    }
    fields.update(changes)
    return VenueOrder(**fields)  # type: ignore[arg-type]


# -- the request params ------------------------------------------------------------------------


def test_bracket_is_an_otoco_with_the_limit_entry_working_and_the_exit_pair_pending() -> None:
    path, p = list_params(group("bracket", stop_loss_limit=94.5), ClientIds(), RULES)
    assert path == "/api/v3/orderList/otoco"
    assert (p["workingType"], p["workingSide"], p["workingPrice"]) == ("LIMIT", "BUY", "100")
    assert (p["workingQuantity"], p["workingClientOrderId"]) == ("0.1", "tl-entry")
    assert (p["pendingSide"], p["pendingQuantity"]) == ("SELL", "0.1")
    # a SELL pair: the target above (LIMIT_MAKER), the stop below
    assert (p["pendingAboveType"], p["pendingAbovePrice"]) == ("LIMIT_MAKER", "110")
    assert p["pendingAboveClientOrderId"] == "tl-target"
    assert (p["pendingBelowType"], p["pendingBelowStopPrice"]) == ("STOP_LOSS_LIMIT", "95")
    assert (p["pendingBelowPrice"], p["pendingBelowTimeInForce"]) == ("94.5", "GTC")
    assert p["pendingBelowClientOrderId"] == "tl-stop"
    assert p["listClientOrderId"] == "tl-entry-list"


def test_a_buy_oco_has_the_stop_above_and_the_limit_maker_below() -> None:
    oco = group("oco", client_order_id="tl-stop", order_type=OrderType.STOP, stop_price=105.0)
    oco = group(
        "oco",
        client_order_id="tl-stop",
        order_type=OrderType.STOP,
        limit_price=None,
        stop_price=105.0,
        take_profit_limit=90.0,
        stop_loss_stop=105.0,
    )
    path, p = list_params(oco, ClientIds(), RULES)
    assert path == "/api/v3/orderList/oco"
    assert (p["side"], p["quantity"]) == ("BUY", "0.1")
    assert (p["aboveType"], p["aboveStopPrice"], p["aboveClientOrderId"]) == (
        "STOP_LOSS",
        "105",
        "tl-stop",
    )
    assert (p["belowType"], p["belowPrice"], p["belowClientOrderId"]) == (
        "LIMIT_MAKER",
        "90",
        "tl-target",
    )


def test_a_bracket_with_a_market_entry_has_no_binance_form_and_is_left_to_emulation() -> None:
    market = group("bracket", order_type=OrderType.MARKET, limit_price=None)
    assert not takes(market)
    assert takes(group("oco"))
    with pytest.raises(OrderRejectedError, match="working order is LIMIT or LIMIT_MAKER"):
        list_params(market, ClientIds(), RULES)


def test_trailing_stop_is_a_stop_loss_with_trailing_delta_in_basis_points() -> None:
    order = VenueOrder(
        "tl-trail", "BTCUSDT", Side.SELL, 0.1, OrderType.TRAILING_STOP, None, 97.0,
        trail_percent=0.03,
    )  # fmt: skip
    p = trailing_params(order, "tl-trail", RULES)
    assert (p["type"], p["trailingDelta"], p["quantity"]) == ("STOP_LOSS", "300", "0.1")
    assert "stopPrice" not in p  # it trails from the moment it is placed
    amount = VenueOrder(
        "tl-trail", "BTCUSDT", Side.SELL, 0.1, OrderType.TRAILING_STOP, trail_amount=2.0
    )
    with pytest.raises(OrderRejectedError, match="by a percentage only"):
        trailing_params(amount, "tl-trail", RULES)


# -- the fake refuses what Binance refuses ------------------------------------------------------


async def test_an_oco_whose_prices_straddle_nothing_is_refused_as_binance_refuses_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """A SELL OCO needs limit > last price (100) > stop; a target of 99 is below it."""
    oco = group(
        "oco", side=Side.SELL, client_order_id="tl-stop", order_type=OrderType.STOP,
        limit_price=None, stop_price=95.0, take_profit_limit=99.0,
    )  # fmt: skip
    with pytest.raises(OrderRejectedError, match="relationship of the prices"):
        await client.submit(oco)
    assert fake.orders == {}


async def test_a_trailing_delta_outside_the_filter_is_refused(
    client: BinanceClient, fake: FakeBinance
) -> None:
    order = VenueOrder(
        "tl-trail", "BTCUSDT", Side.SELL, 0.1, OrderType.TRAILING_STOP, trail_percent=0.5
    )  # 5,000 bps: TRAILING_DELTA allows 10..2,000
    with pytest.raises(OrderRejectedError, match="TRAILING_DELTA"):
        await client.submit(order)
    placed = await client.submit(
        VenueOrder(
            "tl-trail2", "BTCUSDT", Side.SELL, 0.1, OrderType.TRAILING_STOP, trail_percent=0.02
        )
    )
    assert placed.status is OrderStatus.ACCEPTED
    assert fake.orders[("BTCUSDT", "tl-trail2")]["type"] == "STOP_LOSS"


# -- the live broker through the client and the fake --------------------------------------------


def _broker(client: BinanceClient) -> LiveBroker:
    broker = LiveBroker(client, 10_000.0, fractional=True, client_id=lambda o: f"tl-{o.id}")
    broker.marks["BTCUSDT"] = 100.0
    return broker


async def test_live_bracket_is_one_otoco_and_each_legs_fill_comes_back_under_its_id(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """Entry 0.1 @ 100 (limit), target 110, stop 95: the target trades, the venue expires
    the stop. Cash by hand (0.1 % fee in USDT on each trade): 10000 − 10 − 0.01 + 11 −
    0.011 = 10000.979."""
    fake.balances = {"USDT": [10_000.0]}
    broker = _broker(client)
    await broker.load_instruments(["BTCUSDT"])
    fills = Fills(client)
    try:
        await subscribed(fake)
        entry = OrderRequest("BTCUSDT", Side.BUY, 0.1, OrderType.LIMIT, limit_price=100.0)
        stop = OrderRequest(
            "BTCUSDT", Side.SELL, 0.1, OrderType.STOP, stop_price=95.0, reduce_only=True
        )
        target = OrderRequest(
            "BTCUSDT", Side.SELL, 0.1, OrderType.LIMIT, limit_price=110.0, reduce_only=True
        )
        placed = broker.submit_group(entry, [stop, target], oco=True)
        await broker.send()
        assert fake.posted_client_ids == ["tl-1-list"]  # one request for the whole bracket
        assert fake.orders[("BTCUSDT", "tl-2")]["status"] == "PENDING_NEW"
        fake.fill("tl-1", "0.1", "100")
        for execution in await fills.until(1):
            broker.apply(execution)
        assert fake.orders[("BTCUSDT", "tl-3")]["status"] == "NEW"  # the pair is placed
        fake.fill("tl-3", "0.1", "110")
        for execution in (await fills.until(2))[1:]:
            broker.apply(execution)
    finally:
        await fills.close()
    assert fake.orders[("BTCUSDT", "tl-2")]["status"] == "EXPIRED"  # the venue's doing
    assert [o.status for o in placed.orders] == [
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.FILLED,
    ]
    assert [broker.book.order(f.order_id).client_order_id for f in broker.fills] == ["tl-1", "tl-3"]  # type: ignore[union-attr]
    assert broker.position("BTCUSDT") == 0.0
    assert broker.cash == pytest.approx(10_000.979, abs=1e-9)
    assert broker.cash == pytest.approx(float(fake.exchange.total("USDT")), abs=1e-9)
    snapshot = await client.snapshot()
    assert snapshot.open_orders == []
    assert broker.open_orders() == []


async def test_live_bracket_with_a_market_entry_is_emulated_on_binance(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.balances = {"USDT": [10_000.0]}
    broker = _broker(client)
    await broker.load_instruments(["BTCUSDT"])
    entry = OrderRequest("BTCUSDT", Side.BUY, 0.1)
    stop = OrderRequest(
        "BTCUSDT", Side.SELL, 0.1, OrderType.STOP, stop_price=95.0, reduce_only=True
    )
    target = OrderRequest(
        "BTCUSDT", Side.SELL, 0.1, OrderType.LIMIT, limit_price=110.0, reduce_only=True
    )
    placed = broker.submit_group(entry, [stop, target], oco=True)
    assert placed.venue_class == ""  # emulated: the entry alone goes out first
    await broker.send()
    assert fake.posted_client_ids == ["tl-1"]


async def test_live_oco_exit_of_a_held_position_expires_the_target_when_the_stop_trades(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """Held 0.5 BTC (the fake's account); a SELL OCO 0.1: stop 95 trades, cash + 9.5 − 0.0095."""
    broker = _broker(client)
    await broker.load_instruments(["BTCUSDT"])
    held = broker.book.portfolio.positions["BTCUSDT"] = Position("BTCUSDT")
    held.qty, held.avg_price = 0.5, 100.0
    cash_before = float(fake.exchange.total("USDT"))
    broker.book.portfolio.cash = cash_before
    fills = Fills(client)
    try:
        await subscribed(fake)
        stop = OrderRequest("BTCUSDT", Side.SELL, 0.1, OrderType.STOP, stop_price=95.0)
        target = OrderRequest("BTCUSDT", Side.SELL, 0.1, OrderType.LIMIT, limit_price=110.0)
        placed = broker.submit_group(None, [stop, target], oco=True)
        await broker.send()
        assert fake.posted_client_ids == ["tl-1-list"]
        fake.fill("tl-1", "0.1", "95")
        for execution in await fills.until(1):
            broker.apply(execution)
    finally:
        await fills.close()
    assert fake.orders[("BTCUSDT", "tl-2")]["status"] == "EXPIRED"
    assert [o.status for o in placed.orders] == [OrderStatus.FILLED, OrderStatus.CANCELLED]
    assert broker.position("BTCUSDT") == pytest.approx(0.4)
    assert broker.cash == pytest.approx(cash_before + 9.5 - 0.0095, abs=1e-9)
    assert broker.cash == pytest.approx(float(fake.exchange.total("USDT")), abs=1e-9)


async def test_the_fakes_trailing_stop_follows_the_high_and_trades_when_a_bar_reaches_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """SELL 0.1 trailing 2 % (200 bps), by hand: highs 110 then 120 move the stop to 107.80
    then 117.60; the next bar opens at 117, under the stop: it trades at the open, 117."""
    await client.submit(
        VenueOrder(
            "tl-trail", "BTCUSDT", Side.SELL, 0.1, OrderType.TRAILING_STOP, trail_percent=0.02
        )
    )
    order = fake.orders[("BTCUSDT", "tl-trail")]
    for o, h, low in (("105", "110", "104"), ("118", "120", "118")):
        assert fake.lists.match("BTCUSDT", {"o": o, "h": h, "l": low}) == 0
        stops = order["stopPrice"]
    assert stops == "117.60000000"
    assert fake.lists.match("BTCUSDT", {"o": "117", "h": "117.5", "l": "115"}) == 1
    assert (order["status"], fake.trades[-1]["price"]) == ("FILLED", "117.00000000")
