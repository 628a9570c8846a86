"""Alpaca's order classes and trailing stops: the request bodies (checked against the
documented fields of https://docs.alpaca.markets/reference/postorder by hand), the legs'
ids mapped back to ours, and the real ``LiveBroker`` trading a native bracket and an OCO
through ``AlpacaClient`` against the fake, which triggers and cancels the legs as Alpaca
does (``fake_classes``)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable

import pytest
from adapters.alpaca.order_classes import LegMap
from adapters.alpaca.rules import EQUITY_PRICE_TICKS, WHOLE_STEP
from adapters.alpaca.trading import encode_order

from adapters.alpaca import AlpacaClient
from tests.adapters.alpaca.fake_rules import class_refusal
from tests.adapters.alpaca.fake_venue import FakeAlpaca, client_for
from tradeloop.broker.instruments import InstrumentRules
from tradeloop.broker.live import LiveBroker
from tradeloop.broker.orders import OrderRequest
from tradeloop.errors import OrderError, OrderRejectedError
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce
from tradeloop.portfolio import Position
from tradeloop.venue import Execution, VenueOrder

RULES = InstrumentRules("AAPL", qty_step=WHOLE_STEP, price_ticks=EQUITY_PRICE_TICKS)
ENTRY, STOP, TARGET = "tl-entry", "tl-stop", "tl-target"


def bracket(**changes: object) -> VenueOrder:
    fields: dict[str, object] = {
        "client_order_id": ENTRY,
        "asset_id": "AAPL",
        "side": Side.BUY,
        "qty": 10.0,
        "order_type": OrderType.LIMIT,
        "limit_price": 126.5,
        "tif": TimeInForce.GTC,
        "order_class": "bracket",
        "take_profit_limit": 130.0,
        "stop_loss_stop": 120.0,
        "leg_client_order_ids": (STOP, TARGET),
        "list_client_order_id": f"{ENTRY}-list",
    }
    fields.update(changes)
    return VenueOrder(**fields)  # type: ignore[arg-type]


# -- the request bodies ------------------------------------------------------------------------


def test_bracket_body_carries_the_entry_and_both_exits_as_decimal_strings() -> None:
    body = encode_order(bracket(stop_loss_limit=119.5), RULES)
    assert (body["type"], body["limit_price"], body["order_class"]) == ("limit", "126.5", "bracket")
    assert body["take_profit"] == {"limit_price": "130"}
    assert body["stop_loss"] == {"stop_price": "120", "limit_price": "119.5"}
    assert body["client_order_id"] == ENTRY


def test_oto_body_carries_its_one_exit() -> None:
    body = encode_order(
        bracket(order_class="oto", take_profit_limit=None, leg_client_order_ids=(STOP,)), RULES
    )
    assert (body["order_class"], body["stop_loss"]) == ("oto", {"stop_price": "120"})
    assert "take_profit" not in body


def test_oco_body_is_the_take_profit_limit_under_the_targets_id_with_no_top_level_price() -> None:
    """The docs' OCO: ``type=limit``, ``take_profit`` and ``stop_loss``; Alpaca's order is the
    take-profit, so it carries our target's client id even when our first leg is the stop."""
    oco = bracket(
        client_order_id=STOP,
        side=Side.SELL,
        order_type=OrderType.STOP,
        limit_price=None,
        stop_price=120.0,
        order_class="oco",
    )
    body = encode_order(oco, RULES)
    assert (body["type"], body["side"], body["order_class"]) == ("limit", "sell", "oco")
    assert "limit_price" not in body
    assert "stop_price" not in body
    assert (body["take_profit"], body["stop_loss"]) == (
        {"limit_price": "130"},
        {"stop_price": "120"},
    )
    assert body["client_order_id"] == TARGET


def test_exit_prices_go_to_the_tick_never_worse_for_the_exit_side() -> None:
    # a buy bracket's exits sell: their prices round up to the cent (a sell's better side)
    body = encode_order(bracket(take_profit_limit=130.004, stop_loss_stop=120.001), RULES)
    assert (body["take_profit"], body["stop_loss"]) == (
        {"limit_price": "130.01"},
        {"stop_price": "120.01"},
    )


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"take_profit_limit": None}, "needs a take-profit and a stop-loss"),
        ({"order_class": "otoco"}, "Alpaca has no order class 'otoco'"),
        ({"tif": TimeInForce.GTD, "expire_at_ns": 1}, "Alpaca has no time in force gtd"),
    ],
)
def test_a_group_alpaca_cannot_take_is_refused_before_sending(
    changes: dict[str, object], match: str
) -> None:
    with pytest.raises(OrderError, match=match):
        encode_order(bracket(**changes), RULES)


@pytest.mark.parametrize(
    ("trail", "wire"),
    [
        ({"trail_percent": 0.03}, {"trail_percent": "3"}),
        ({"trail_amount": 1.5}, {"trail_price": "1.5"}),
    ],
)
def test_trailing_stop_body_has_the_trail_and_no_stop_price(
    trail: dict[str, float], wire: dict[str, str]
) -> None:
    order = VenueOrder(
        "tl-trail",
        "AAPL",
        Side.SELL,
        10,
        OrderType.TRAILING_STOP,
        None,
        123.0,
        **trail,  # type: ignore[arg-type]
    )
    body = encode_order(order, RULES)
    assert body["type"] == "trailing_stop"
    assert {k: v for k, v in body.items() if k.startswith("trail")} == wire
    assert "stop_price" not in body
    assert "limit_price" not in body
    assert class_refusal(body, 126.0) is None  # the fake takes what we send


def test_leg_map_names_the_legs_by_type_from_the_parents_legs() -> None:
    ours: dict[str, str] = {}
    legs = LegMap(ours)
    legs.expect(bracket(), ENTRY)
    legs.learn(
        {"client_order_id": "someone-else", "legs": [{"type": "stop", "client_order_id": "x"}]}
    )
    assert ours == {ENTRY: ENTRY}  # only the groups this client sent
    legs.learn(
        {
            "client_order_id": ENTRY,
            "legs": [
                {"type": "limit", "client_order_id": "alpaca-uuid-1"},
                {"type": "stop", "client_order_id": "alpaca-uuid-2"},
            ],
        }
    )
    assert ours == {ENTRY: ENTRY, "alpaca-uuid-1": TARGET, "alpaca-uuid-2": STOP}
    assert legs.venue_cid(STOP, STOP) == "alpaca-uuid-2"
    assert legs.venue_cid(ENTRY, ENTRY) == ENTRY


# -- what the fake refuses (https://docs.alpaca.markets/docs/orders-at-alpaca) -------------------


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"take_profit_limit": 126.5}, "http_error_422_take_profit_base.json"),  # not a cent above
        ({"stop_loss_stop": 126.5}, "http_error_422_stop_loss_base.json"),  # not a cent below
        (
            {"side": Side.SELL, "take_profit_limit": 130.0, "stop_loss_stop": 120.0},
            "http_error_422_take_profit_base_short.json",  # a short's target lies below
        ),
    ],
)
async def test_fake_refuses_bracket_exits_on_the_wrong_side_of_the_base_price(
    fake: FakeAlpaca, client: AlpacaClient, changes: dict[str, object], refusal: str
) -> None:
    with pytest.raises(OrderRejectedError, match="base_price"):
        await client.submit(bracket(**changes))
    assert fake.refusals == [refusal]
    assert fake.orders == {}


# -- the live broker through the client and the fake ------------------------------------------


def _booking(client: AlpacaClient, broker: LiveBroker) -> asyncio.Task[None]:
    """The daemon's executions task, in small: fills booked, order updates observed."""

    async def run() -> None:
        async for event in client.executions():
            if isinstance(event, Execution):
                broker.apply(event)
            else:
                broker.observe(event)

    return asyncio.create_task(run())


async def _until(done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not done():  # noqa: ASYNC110 (a probe of the book)
            await asyncio.sleep(0.01)


def bracket_requests() -> tuple[OrderRequest, OrderRequest, OrderRequest]:
    """Buy 10 @ 126.5 (limit), its reduce-only exits: a stop at 120, a target at 130."""
    return (
        OrderRequest("AAPL", Side.BUY, 10, OrderType.LIMIT, limit_price=126.5),
        OrderRequest("AAPL", Side.SELL, 10, OrderType.STOP, stop_price=120.0, reduce_only=True),
        OrderRequest("AAPL", Side.SELL, 10, OrderType.LIMIT, limit_price=130.0, reduce_only=True),
    )


def _broker(client: AlpacaClient) -> LiveBroker:
    broker = LiveBroker(client, 100_000.0, client_id=lambda o: f"tl-{o.id}")
    broker.book.marks["AAPL"] = 126.5
    return broker


async def test_live_bracket_goes_as_one_order_and_each_legs_fill_comes_back_under_its_id(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """Entry 10 @ 126.5, target 130, stop 120: the target fills, Alpaca cancels the stop.
    Cash by hand: 100000 − 10 × 126.5 + 10 × 130 = 100035."""
    broker = _broker(client)
    task = _booking(client, broker)
    try:
        await asyncio.wait_for(fake.trade_listening.wait(), 5.0)
        entry, stop, target = bracket_requests()
        group = broker.submit_group(entry, [stop, target], oco=True)
        await broker.send()
        assert [r[0] for r in fake.requests].count("POST") == 1  # one request for the group
        parent = next(
            o for o in fake.orders.values() if o["order_class"] == "bracket" and o["legs"]
        )
        assert parent["client_order_id"] == "tl-1"
        await fake.report_fill(parent["id"], 10, 126.5)
        await _until(lambda: broker.position("AAPL") == 10)
        leg = {o["type"]: o for o in fake.orders.values() if o["id"] != parent["id"]}
        assert leg["limit"]["status"] == leg["stop"]["status"] == "new"  # the entry filled
        await fake.report_fill(leg["limit"]["id"], 10, 130.0)
        await _until(lambda: broker.position("AAPL") == 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert leg["stop"]["status"] == "canceled"  # Alpaca cancelled the sibling
    assert [o.status for o in group.orders] == [
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.FILLED,
    ]
    assert [broker.book.order(f.order_id).client_order_id for f in broker.fills] == ["tl-1", "tl-3"]  # type: ignore[union-attr]
    assert broker.cash == pytest.approx(100_035.0) == pytest.approx(fake.cash)
    snapshot = await client.snapshot()
    assert snapshot.open_orders == []
    assert broker.open_orders() == []
    assert broker.foreign_executions == 0


async def test_live_oco_stop_fill_comes_back_under_the_stop_legs_id_and_cancels_the_target(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """An OCO exit of a held 10 (bought at 126.5 by hand on both sides): the stop fills at
    120; cash 100000 − 1265 + 1200 = 99935."""
    broker = _broker(client)
    broker.book.portfolio.cash -= 1265.0
    held = broker.book.portfolio.positions["AAPL"] = Position("AAPL")
    held.qty, held.avg_price = 10, 126.5
    fake.positions["AAPL"], fake.cash = 10.0, fake.cash - 1265.0
    task = _booking(client, broker)
    try:
        await asyncio.wait_for(fake.trade_listening.wait(), 5.0)
        stop = OrderRequest("AAPL", Side.SELL, 10, OrderType.STOP, stop_price=120.0)
        target = OrderRequest("AAPL", Side.SELL, 10, OrderType.LIMIT, limit_price=130.0)
        group = broker.submit_group(None, [stop, target], oco=True)
        await broker.send()
        (parent,) = [o for o in fake.orders.values() if o["legs"]]
        assert (parent["type"], parent["client_order_id"]) == ("limit", "tl-2")  # our target
        (stop_leg,) = parent["legs"]
        await fake.report_fill(stop_leg["id"], 10, 120.0)
        await _until(lambda: broker.position("AAPL") == 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert fake.orders[parent["id"]]["status"] == "canceled"
    assert [o.status for o in group.orders] == [OrderStatus.FILLED, OrderStatus.CANCELLED]
    assert broker.book.order(broker.fills[0].order_id).client_order_id == "tl-1"  # type: ignore[union-attr]
    assert broker.cash == pytest.approx(99_935.0) == pytest.approx(fake.cash)


async def test_after_a_restart_a_native_brackets_working_legs_are_found_and_book_their_fill(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """A new process (a new client and broker, restored from the first one's orders and
    fills) knows none of Alpaca's leg ids; ``remember_group`` lets the lookups name them."""
    first = _broker(client)
    task = _booking(client, first)
    try:
        await asyncio.wait_for(fake.trade_listening.wait(), 5.0)
        entry, stop, target = bracket_requests()
        first.submit_group(entry, [stop, target], oco=True)
        await first.send()
        parent = next(o for o in fake.orders.values() if o["legs"])
        await fake.report_fill(parent["id"], 10, 126.5)
        await _until(lambda: first.position("AAPL") == 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    restarted = client_for(fake)
    await restarted.start()
    second = _broker(restarted)
    try:
        second.restore(copy.deepcopy(first.orders), list(first.fills), {}, 0.0, dict(first.marks))
        second.restore_live(list(first.trade_ids))
        assert await second.resolve() == 0  # both legs looked up, found working
        legs = second.orders[1:]
        assert [o.status for o in legs] == [OrderStatus.ACCEPTED, OrderStatus.ACCEPTED]
        task = _booking(restarted, second)
        await asyncio.wait_for(fake.trade_listening.wait(), 5.0)
        leg = next(o for o in fake.orders.values() if o["type"] == "stop")
        await fake.report_fill(leg["id"], 10, 120.0)
        await _until(lambda: second.position("AAPL") == 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await restarted.close()
    assert second.foreign_executions == 0
    assert [o.status for o in second.orders] == [
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
    ]
    assert second.cash == pytest.approx(100_000 - 1265 + 1200) == pytest.approx(fake.cash)
