"""LiveBroker against an in-process venue that keeps its own book: orders are sent once,
under their journaled client ids; unknown outcomes are looked up, never resent; fills are
booked once per trade id; a restart and a reconciliation agree with the venue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tradeloop.broker.live import LiveBroker
from tradeloop.broker.orders import Order
from tradeloop.errors import OrderRejectedError, OutcomeUnknownError, RateLimitError
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.journal import Journal
from tradeloop.service.reconcile import differences, reconcile
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, VenueSnapshot

T0 = 1_700_000_000 * 10**9


class FakeVenue:
    """A venue with a book. ``faults`` are raised by the next submits, in order; a fault
    named "after" is raised *after* the order was accepted (a 5xx on a live order)."""

    def __init__(self, cash: float = 10_000.0) -> None:
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.book: dict[str, VenueOrderState] = {}
        self.submitted: list[str] = []
        self.cancelled: list[str] = []
        self.faults: list[Exception | str] = []
        self.trades: list[Execution] = []

    async def start(self) -> None:
        return

    async def close(self) -> None:
        return

    async def submit(self, order: VenueOrder) -> VenueOrderState:
        self.submitted.append(order.client_order_id)
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, Exception):
            raise fault
        state = VenueOrderState(
            order.client_order_id, f"v{len(self.book)}", order.asset_id, order.side, order.qty,
            OrderStatus.ACCEPTED,
        )  # fmt: skip
        self.book[order.client_order_id] = state
        if fault == "after":
            raise OutcomeUnknownError("HTTP 503 after the order was accepted")
        return state

    async def cancel(self, client_order_id: str, asset_id: str) -> None:
        self.cancelled.append(client_order_id)
        state = self.book[client_order_id]
        self.book[client_order_id] = VenueOrderState(
            state.client_order_id, state.venue_order_id, state.asset_id, state.side, state.qty,
            OrderStatus.CANCELLED,
        )  # fmt: skip

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None:
        return self.book.get(client_order_id)

    async def snapshot(self) -> VenueSnapshot:
        live = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
        open_orders = [s for s in self.book.values() if s.status in live]
        return VenueSnapshot(self.cash, dict(self.positions), open_orders)

    async def executions(self) -> AsyncIterator[Execution]:
        for trade in self.trades:
            yield trade

    async def recent_executions(self, since_ns: int) -> list[Execution]:
        return [t for t in self.trades if t.ts_ns >= since_ns]

    def fill(self, cid: str, trade_id: str, qty: float, price: float, fee: float) -> Execution:
        """The venue fills ``qty`` of ``cid``: its own book moves, and it reports it."""
        state = self.book[cid]
        done = state.filled_qty + qty
        status = OrderStatus.FILLED if done >= state.qty else OrderStatus.PARTIALLY_FILLED
        self.book[cid] = VenueOrderState(
            cid, state.venue_order_id, state.asset_id, state.side, state.qty, status, done, price
        )
        sign = 1 if state.side is Side.BUY else -1
        self.positions[state.asset_id] = self.positions.get(state.asset_id, 0.0) + sign * qty
        self.cash -= sign * qty * price + fee
        trade = Execution(
            trade_id, cid, state.asset_id, state.side, qty, price, fee, T0 + len(self.trades)
        )
        self.trades.append(trade)
        return trade


def cid(order: Order) -> str:
    return f"cid{order.id}"


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
    venue = FakeVenue()
    venue.faults = ["after", OutcomeUnknownError("timeout before the venue saw it")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
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
    assert await broker.resolve() == 0
    assert a.status is OrderStatus.ACCEPTED  # the venue has it: it lives
    assert b.status is OrderStatus.REJECTED  # the venue never heard of it
    assert b.message == "never reached the venue (looked up by client id)"
    assert venue.submitted == ["cid1", "cid2"]
    assert heard == [
        (1, "accepted"),
        (2, "accepted"),
        (1, "unknown"),
        (2, "unknown"),
        (1, "accepted"),
        (2, "rejected"),
    ]


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


async def test_restart_restores_trades_and_looks_up_working_orders(tmp_path: Path) -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    journal = Journal(tmp_path / "journal.sqlite", "s")
    broker.submit("A", Side.BUY, 5)
    broker.submit("A", Side.BUY, 3, order_type=OrderType.LIMIT, limit_price=9.0)
    journal.commit(T0, broker, {}, None)  # written before sending
    await broker.send()
    cid1, cid2 = broker.orders[0].client_order_id, broker.orders[1].client_order_id
    broker.apply(venue.fill(cid1, "t1", 5, 10.0, 0.05))
    journal.commit(T0 + 1, broker, {}, None)
    journal.close()
    # crash; the limit order fills while the process is down
    venue.fill(cid2, "t2", 3, 9.0, 0.03)

    journal = Journal(tmp_path / "journal.sqlite", "s")
    saved = journal.load()
    again = LiveBroker(venue, 10_000.0, client_id=cid)
    again.restore(saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks)
    again.restore_live(saved.trade_ids)
    assert saved.trade_ids == ["t1"]
    assert again.orders[1].status is OrderStatus.UNKNOWN
    gate = PreTradeGate()
    gate.bind(again)
    found = await reconcile(
        again, gate, on_mismatch="halt", since_ns=T0, log=structlog.get_logger()
    )
    assert found == []  # t1 skipped as booked, t2 booked from recent_executions
    assert again.trade_ids == ["t1", "t2"]
    assert again.position("A") == venue.positions["A"] == 8
    assert again.cash == pytest.approx(venue.cash)
    assert again.orders[1].status is OrderStatus.FILLED
    assert venue.submitted == [cid1, cid2]  # nothing was sent again
    journal.close()


def test_differences_name_every_disagreement() -> None:
    snapshot = VenueSnapshot(
        990.0,
        {"A": 5.0, "C": 1.0},
        [VenueOrderState("x1", "v1", "A", Side.BUY, 1, OrderStatus.ACCEPTED)],
    )
    found = differences({"A": 4.0, "B": 2.0}, 1_000.0, {"x2"}, snapshot)
    assert found == [
        "position A: journal 4, venue 5",
        "position B: journal 2, venue 0",
        "position C: journal 0, venue 1",
        "order x1 is open at the venue but not in the journal",
        "order x2 is open in the journal but not at the venue",
        "cash: journal 1,000.00, venue 990.00",
    ]
    assert differences({"A": 5.0, "C": 1.0}, 990.004, {"x1"}, snapshot) == []


async def test_a_mismatch_adopts_the_venue_and_halts() -> None:
    venue = FakeVenue(cash=9_000.0)
    venue.positions = {"A": 7.0}
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 100.0
    gate = PreTradeGate()
    gate.bind(broker)
    log: Any = structlog.get_logger()
    found = await reconcile(broker, gate, on_mismatch="reduce_only", since_ns=T0, log=log)
    assert found == ["position A: journal 0, venue 7", "cash: journal 10,000.00, venue 9,000.00"]
    assert broker.position("A") == 7
    assert broker.cash == 9_000.0
    assert gate.mode is GateMode.REDUCE_ONLY
    assert gate.reason.startswith("reconciliation: position A: journal 0, venue 7")
    assert broker.submit("A", Side.BUY, 1).status is OrderStatus.REJECTED
    assert broker.submit("A", Side.SELL, 7).is_open


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


async def test_reconciliation_settles_an_order_the_venue_has_finished() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, fractional=True, client_id=cid)
    broker.marks["BTC"] = 100.0
    order = broker.submit("BTC", Side.BUY, 1.0)
    await broker.send()
    trade = venue.fill("cid1", "t1", 1.0, 100.0, 0.0)
    # the fill was reported net of a fee in kind, without saying the order was done
    broker.apply(Execution("t1", "cid1", "BTC", Side.BUY, 0.999, 100.0, 0.0, trade.ts_ns))
    venue.positions["BTC"] = 0.999
    venue.cash = broker.cash
    assert order.status is OrderStatus.PARTIALLY_FILLED
    gate = PreTradeGate()
    gate.bind(broker)
    log: Any = structlog.get_logger()
    found = await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log)
    assert found == []
    assert order.status is OrderStatus.FILLED
    assert gate.mode is GateMode.NORMAL
