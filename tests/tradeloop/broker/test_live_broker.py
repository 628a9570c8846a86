"""LiveBroker against an in-process venue that keeps its own book: orders are sent once,
under their journaled client ids; unknown outcomes are looked up, never resent; fills are
booked once per trade id; a restart and a reconciliation agree with the venue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.tradeloop.fake_venue import T0, FakeVenue, RulesVenue, cid
from tradeloop.broker.instruments import InstrumentRules
from tradeloop.broker.live import LiveBroker
from tradeloop.errors import (
    ConnectionLostError,
    DuplicateOrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.venue import Execution, VenueOrder, VenueOrderState


async def test_orders_go_once_under_their_client_id_and_fills_are_booked_once() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, fractional=True, client_id=cid)
    broker.marks["BTC"] = 100.0
    order = broker.submit("BTC", Side.BUY, 10)
    assert venue.submitted == []  # nothing leaves before the journal has the client id
    await broker.send()
    await broker.send()
    assert venue.submitted == ["cid1"]
    broker.apply(venue.fill("cid1", "t1", 4, 100.0, 0.4))
    assert broker.apply(venue.trades[0]) is None  # the same trade again: ignored
    broker.apply(venue.fill("cid1", "t2", 6, 101.0, 0.6))
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == pytest.approx((4 * 100 + 6 * 101) / 10)
    assert broker.position("BTC") == 10
    assert broker.cash == pytest.approx(10_000 - 400 - 606 - 1.0)
    assert broker.cash == pytest.approx(venue.cash)
    assert broker.trade_ids == ["t1", "t2"]
    assert broker.duplicate_executions == 1
    stranger = Execution("t9", "someone-else", "BTC", Side.BUY, 1, 100.0, 0.0, T0)
    assert broker.apply(stranger) is None
    assert broker.foreign_executions == 1
    assert broker.position("BTC") == 10


async def test_unknown_outcome_is_looked_up_never_resent() -> None:
    now = [0.0]
    venue = FakeVenue()
    venue.faults = ["after", OutcomeUnknownError("timeout before the venue saw it")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid, clock=lambda: now[0], unknown_deadline_s=0)
    heard: list[tuple[int, str]] = []
    broker.order_listeners.append(lambda o: heard.append((o.id, o.status.value)))
    broker.marks.update({"A": 10.0, "B": 10.0})
    a = broker.submit("A", Side.BUY, 5)
    b = broker.submit("B", Side.BUY, 5)
    await broker.send()
    assert a.status is b.status is OrderStatus.UNKNOWN
    assert broker.open_orders("A") == [a]  # it may be live: it still counts as working
    await broker.send()  # nothing is resent
    assert venue.submitted == ["cid1", "cid2"]
    assert await broker.resolve() == 0  # a deadline of 0: one lookup decides
    assert a.status is OrderStatus.ACCEPTED  # the venue has it: it lives
    assert b.status is OrderStatus.REJECTED  # the venue never heard of it
    assert b.message == "never reached the venue: not found by client id in 0.0 s (1 lookups)"
    assert venue.submitted == ["cid1", "cid2"]
    assert heard == [
        (1, "accepted"),
        (2, "accepted"),
        (1, "unknown"),
        (2, "unknown"),
        (1, "accepted"),
        (2, "rejected"),
    ]


async def test_unknown_outcome_is_looked_up_with_backoff_until_the_deadline() -> None:
    now = [0.0]
    venue = FakeVenue()
    venue.faults = [OutcomeUnknownError("HTTP 504")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid, clock=lambda: now[0], unknown_deadline_s=5)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5)
    await broker.send()
    looked: list[float] = []
    original = venue.order

    async def counted(client_order_id: str, asset_id: str) -> VenueOrderState | None:
        looked.append(now[0])
        return await original(client_order_id, asset_id)

    venue.order = counted  # type: ignore[method-assign]
    for tick in range(0, 80):  # the sender's half-second tick, for 40 s
        now[0] = tick * 0.5
        await broker.resolve()
    # lookups spaced 0.5, 1, 2, 4 s: 0, 0.5, 1.5, 3.5, then 7.5 ≥ 5 s: never placed
    assert looked == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert order.status is OrderStatus.REJECTED
    assert order.message == "never reached the venue: not found by client id in 7.5 s (5 lookups)"


async def test_unknown_outcome_that_appears_late_is_adopted() -> None:
    now = [0.0]
    venue = FakeVenue()
    venue.faults = [OutcomeUnknownError("HTTP 503")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid, clock=lambda: now[0], unknown_deadline_s=60)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5)
    await broker.send()
    assert await broker.resolve() == 1  # 404: still unknown, looked up again later
    # the venue's matching engine shows it a second later (documented for a 5xx)
    venue.book["cid1"] = VenueOrderState("cid1", "v9", "A", Side.BUY, 5, OrderStatus.ACCEPTED)
    now[0] = 0.2
    assert await broker.resolve() == 1  # not due yet: no request
    now[0] = 0.5
    assert await broker.resolve() == 0
    assert order.status is OrderStatus.ACCEPTED


@pytest.mark.parametrize("evidence", ["fill", "update"])
async def test_stream_evidence_settles_an_unknown_order_at_once(evidence: str) -> None:
    venue = FakeVenue()
    venue.faults = ["after"]
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5)
    await broker.send()
    assert order.status is OrderStatus.UNKNOWN
    if evidence == "fill":
        broker.apply(venue.fill("cid1", "t1", 5, 10.0, 0.0))
        assert order.status is OrderStatus.FILLED
    else:
        cancelled = VenueOrderState("cid1", "v0", "A", Side.BUY, 5, OrderStatus.CANCELLED)
        broker.observe(cancelled)
        assert order.status is OrderStatus.CANCELLED
        broker.observe(VenueOrderState("cid1", "v0", "A", Side.BUY, 5, OrderStatus.ACCEPTED))
        assert order.status is OrderStatus.CANCELLED  # an old update of a finished order
    assert len(broker.lookups) == 0  # nothing left to look up
    assert await broker.resolve() == 0


async def test_duplicate_client_id_means_it_exists_and_is_looked_up() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5)
    venue.book["cid1"] = VenueOrderState("cid1", "v1", "A", Side.BUY, 5, OrderStatus.ACCEPTED)
    venue.faults = [DuplicateOrderError("-2010 Duplicate order sent.")]
    await broker.send()
    assert order.status is OrderStatus.UNKNOWN  # not rejected: it is there
    assert order.message.startswith("the venue already has this client id")
    await broker.resolve()
    assert order.status is OrderStatus.ACCEPTED
    assert venue.submitted == ["cid1"]


@pytest.mark.parametrize(
    "fault",
    [VenueProtocolError("HTTP 200, body unreadable"), ConnectionLostError("reset by peer")],
)
async def test_any_adapter_error_on_submit_leaves_the_order_unknown(fault: Exception) -> None:
    venue = FakeVenue()
    venue.faults = [fault]
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5)
    await broker.send()
    assert order.status is OrderStatus.UNKNOWN
    assert broker.outbox == []
    await broker.send()
    assert venue.submitted == ["cid1"]


async def test_a_crash_mid_send_leaves_the_request_in_flight_unknown_not_resent() -> None:
    venue = FakeVenue()
    venue.faults = [RuntimeError("a bug in the adapter")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    first, second = broker.submit("A", Side.BUY, 1), broker.submit("A", Side.BUY, 1)
    with pytest.raises(RuntimeError, match="a bug in the adapter"):
        await broker.send()
    assert first.status is OrderStatus.UNKNOWN  # its request may have gone out
    assert broker.outbox == [second]  # the rest waits for the restarted sender
    await broker.send()
    assert venue.submitted == ["cid1", "cid2"]


async def test_an_order_placed_while_sending_waits_for_the_journal() -> None:
    venue = FakeVenue()
    venue.faults = [OrderRejectedError("-2010 balance")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    # a strategy that answers a rejection with a new order (from inside on_order)
    broker.order_listeners.append(
        lambda o: broker.submit("A", Side.BUY, 1) if o.status is OrderStatus.REJECTED else None
    )
    broker.submit("A", Side.BUY, 2)
    await broker.send()
    assert venue.submitted == ["cid1"]  # cid2 was not journaled yet: it goes next pass
    assert [o.client_order_id for o in broker.outbox] == ["cid2"]


async def test_an_order_cancelled_while_a_request_is_out_is_never_sent() -> None:
    """Found by the fault matrix: a halt (the supervisor losing the execution stream) cancels
    the outbox while the sender awaits a submit; the sender went on popping a list that had
    shrunk (IndexError, the sender task failed). The cancelled order must simply not go."""
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    first, second = broker.submit("A", Side.BUY, 1), broker.submit("A", Side.BUY, 2)
    real_submit = venue.submit

    async def submit_then_halt(order: VenueOrder) -> VenueOrderState:
        state = await real_submit(order)
        broker.cancel(second.id, "halted")  # what the gate does on another task meanwhile
        return state

    venue.submit = submit_then_halt  # type: ignore[method-assign]
    await broker.send()
    assert venue.submitted == ["cid1"]
    assert first.status is OrderStatus.ACCEPTED
    assert (second.status, second.message) == (OrderStatus.CANCELLED, "halted")
    assert broker.outbox == []


async def test_rate_limit_holds_the_outbox_and_rejection_is_final() -> None:
    now = [0.0]
    venue = FakeVenue()
    venue.faults = [RateLimitError("429", retry_after_s=5.0), OrderRejectedError("-2010 balance")]
    broker = LiveBroker(venue, 10_000.0, clock=lambda: now[0], client_id=cid)
    broker.marks["A"] = 10.0
    first, second = broker.submit("A", Side.BUY, 1), broker.submit("A", Side.BUY, 2)
    await broker.send()
    assert venue.submitted == ["cid1"]  # refused with 429: not executed, nothing else tried
    now[0] = 4.9
    await broker.send()
    assert venue.submitted == ["cid1"]
    now[0] = 5.0
    await broker.send()
    assert venue.submitted == ["cid1", "cid1", "cid2"]
    assert first.status is OrderStatus.REJECTED
    assert first.message == "rejected by the venue: -2010 balance"
    assert second.is_open


async def test_cancel_before_sending_stays_local() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    kept, dropped = broker.submit("A", Side.BUY, 1), broker.submit("A", Side.BUY, 1)
    assert broker.cancel(dropped.id)
    await broker.send()
    assert venue.submitted == ["cid1"]
    assert broker.cancel(kept.id)
    assert kept.is_open  # until the venue confirms
    await broker.send()
    assert venue.cancelled == ["cid1"]
    assert kept.status is dropped.status is OrderStatus.CANCELLED


async def test_a_fee_taken_in_kind_still_completes_the_order() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, fractional=True, client_id=cid)
    broker.marks["BTC"] = 100.0
    order = broker.submit("BTC", Side.BUY, 1.0)
    await broker.send()
    # the venue filled 1.0 but kept 0.001 BTC as its fee: 0.999 arrives, the order is done
    done = Execution("t1", "cid1", "BTC", Side.BUY, 0.999, 100.0, 0.1, T0, order_done=True)
    broker.apply(done)
    assert order.status is OrderStatus.FILLED
    assert broker.position("BTC") == 0.999
    assert broker.cash == pytest.approx(10_000.0 - 100.0)


BTC_RULES = InstrumentRules(
    "BTCUSDT",
    qty_step=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
    price_ticks=((Decimal(0), Decimal("0.01")),),
    min_notional=Decimal("5"),
)


async def test_orders_conform_to_the_venue_rules_before_the_journal_and_go_as_decimals() -> None:
    venue = RulesVenue({"BTCUSDT": BTC_RULES})
    broker = LiveBroker(venue, 100_000.0, fractional=True, client_id=cid)
    broker.marks["BTCUSDT"] = 30_000.0
    assert await broker.load_instruments(["BTCUSDT", "ETHUSDT"]) == 1
    assert venue.asked == [["BTCUSDT", "ETHUSDT"]]
    order = broker.submit("BTCUSDT", Side.BUY, 0.1 + 0.2, order_type=OrderType.LIMIT,
                          limit_price=30_000.004)  # fmt: skip
    # what the journal stores is what the venue gets: the qty on the step, the limit down
    assert order.qty == 0.3
    assert order.limit_price == 30_000.0
    assert order.message == "conformed to the venue's rules: limit 30000.004 -> 30000"
    await broker.send()
    sent = venue.requests[0]
    assert (sent.qty_text, sent.limit_text, sent.stop_text) == ("0.3", "30000", None)


async def test_an_order_the_rules_refuse_is_rejected_locally_naming_the_rule() -> None:
    venue = RulesVenue({"BTCUSDT": BTC_RULES})
    broker = LiveBroker(venue, 100_000.0, fractional=True, client_id=cid)
    broker.marks["BTCUSDT"] = 30_000.0
    await broker.load_instruments(["BTCUSDT"])
    heard: list[str] = []
    broker.order_listeners.append(lambda o: heard.append(f"{o.status}: {o.message}"))
    order = broker.submit("BTCUSDT", Side.BUY, 0.0001)  # 0.0001 × 30,000 = 3 USDT < 5
    assert order.status is OrderStatus.REJECTED
    assert heard == ["rejected: instrument min_notional: BTCUSDT: notional 3.00000000 < 5"]
    assert broker.book.instrument_refusals == {"min_notional": 1}
    await broker.send()
    assert venue.submitted == []  # nothing reached the venue


async def test_protective_exit_passes_a_halted_gate_and_never_sells_twice() -> None:
    venue = RulesVenue({"BTCUSDT": BTC_RULES})
    broker = LiveBroker(venue, 100_000.0, fractional=True, client_id=cid)
    broker.marks["BTCUSDT"] = 30_000.0
    await broker.load_instruments(["BTCUSDT"])
    broker.portfolio.apply_fill("BTCUSDT", 0.0099925, 30_000.0, 0.0, T0)  # fee-reduced
    gate = PreTradeGate()
    gate.bind(broker)
    gate.set_mode(GateMode.HALTED, "kill")
    bar = (30_000.0, 30_000.0, 29_000.0, 29_500.0, 1.0, 7)
    broker.exit_position("BTCUSDT", 29_500.0, "stop_loss", OrderType.STOP, bar)
    broker.exit_position("BTCUSDT", 29_500.0, "stop_loss", OrderType.STOP, bar)  # next bar
    broker.exit_position("BTCUSDT", 29_500.0, "stop_loss", OrderType.STOP, bar)
    exits = [o for o in broker.orders if o.reason == "stop_loss"]
    # the second finds all but the dust already being closed: the dust is refused, once
    assert [o.status for o in exits] == [OrderStatus.ACCEPTED, OrderStatus.REJECTED]
    assert exits[1].message.startswith("instrument qty_step: BTCUSDT: quantity 0.0000024999")
    assert exits[1].message.endswith("rounds to 0 at 0.00001")
    assert exits[0].qty == 0.00999  # down to the step: 0.0000025 BTC of dust stays
    assert exits[0].id in broker.book.protective
    assert broker.submit("BTCUSDT", Side.SELL, 0.001).message == "gate halted: halted (kill)"
    await broker.send()
    assert venue.requests[0].qty_text == "0.00999"


async def test_protective_exit_of_dust_below_the_minimum_is_refused_and_logged() -> None:
    rules = InstrumentRules("BTCUSDT", qty_step=Decimal("0.00001"), min_qty=Decimal("0.0001"))
    venue = RulesVenue({"BTCUSDT": rules})
    broker = LiveBroker(venue, 100_000.0, fractional=True, client_id=cid)
    await broker.load_instruments(["BTCUSDT"])
    broker.portfolio.apply_fill("BTCUSDT", 0.00005, 30_000.0, 0.0, T0)
    bar = (30_000.0, 30_000.0, 29_000.0, 29_500.0, 1.0, 7)
    broker.exit_position("BTCUSDT", 29_500.0, "trailing_stop", OrderType.STOP, bar)
    assert broker.orders[0].status is OrderStatus.REJECTED
    assert broker.orders[0].message == "instrument min_qty: BTCUSDT: quantity 0.00005 < 0.0001"
    assert broker.outbox == []


async def test_a_fee_in_a_third_asset_is_booked_at_its_value_and_kept_apart() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, fractional=True, client_id=cid)
    broker.marks["BTCUSDT"] = 100.0
    broker.submit("BTCUSDT", Side.BUY, 1.0)
    await broker.send()
    # 1 BTC at 100 USDT; the 0.075 USDT fee was paid as 0.00025 BNB (BNB at 300 USDT)
    broker.apply(
        Execution(
            "t1", "cid1", "BTCUSDT", Side.BUY, 1.0, 100.0, 0.075, T0,
            commission_asset="BNB", commission_paid=0.00025,
        )
    )  # fmt: skip
    assert broker.cash == pytest.approx(10_000.0 - 100.0 - 0.075)  # the cost is booked
    assert broker.ledger.fees_elsewhere == {"BNB": [0.00025, 0.075]}
    assert broker.ledger.elsewhere_value() == 0.075  # but it never left the USDT balance
    assert broker.live_state()["fees_elsewhere"] == {"BNB": [0.00025, 0.075]}


async def test_paper_with_the_same_rules_refuses_and_rounds_what_live_would() -> None:
    from tradeloop.broker.paper import PaperBroker

    orders = [
        ("BTCUSDT", Side.BUY, 0.1 + 0.2, OrderType.MARKET, None),
        ("BTCUSDT", Side.BUY, 0.0001, OrderType.MARKET, None),  # 3 USDT: below 5
        ("BTCUSDT", Side.BUY, 0.01, OrderType.LIMIT, 29_999.999),
        ("BTCUSDT", Side.BUY, 0.000001, OrderType.LIMIT, 30_000.0),  # below the step
    ]
    paper = PaperBroker(100_000.0, fractional=True)
    paper.book.instruments["BTCUSDT"] = BTC_RULES  # what [instruments.BTCUSDT] gives
    live = LiveBroker(RulesVenue({"BTCUSDT": BTC_RULES}), 100_000.0, fractional=True, client_id=cid)
    await live.load_instruments(["BTCUSDT"])
    outcomes = []
    for broker in (paper, live):
        broker.marks["BTCUSDT"] = 30_000.0
        placed = [
            broker.submit(asset, side, qty, order_type=kind, limit_price=limit)
            for asset, side, qty, kind, limit in orders
        ]
        outcomes.append([(o.status, o.qty, o.limit_price, o.message) for o in placed])
    assert outcomes[0] == outcomes[1]
    assert [status for status, *_ in outcomes[0]] == [
        OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.ACCEPTED, OrderStatus.REJECTED,
    ]  # fmt: skip
    assert outcomes[0][2][2] == 29_999.99  # a buy limit rounds down to the tick


async def test_a_halt_cancels_at_the_venue_and_says_why_once_it_is_confirmed() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    entry = broker.submit("A", Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=9.0)
    await broker.send()
    gate = PreTradeGate()
    gate.bind(broker)
    gate.set_mode(GateMode.HALTED, "kill")
    assert entry.is_open  # asked, not yet confirmed
    assert entry.message == ""
    await broker.send()
    assert venue.cancelled == ["cid1"]
    assert entry.status is OrderStatus.CANCELLED
    assert entry.message == "cancelled: halted (kill)"
