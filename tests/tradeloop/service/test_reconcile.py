"""Reconciliation against an in-process venue that keeps its own book: a restart agrees with
the venue; differences inside the tolerance are adopted and logged, outside it the gate
takes the configured action; fees paid in a third asset are added back before comparing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from tests.tradeloop.fake_venue import T0, FakeVenue, cid
from tradeloop.broker.live import LiveBroker
from tradeloop.errors import OutcomeUnknownError
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.journal import Journal
from tradeloop.service.reconcile import Tolerance, differences, reconcile
from tradeloop.venue import AccountFee, Execution, VenueOrderState, VenueSnapshot


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


def restarted(broker: LiveBroker, venue: FakeVenue, tmp_path: Path) -> LiveBroker:
    """Journal ``broker``, then rebuild it from the journal as a restarted daemon does."""
    journal = Journal(tmp_path / "journal.sqlite", "s")
    journal.commit(T0, broker, {}, None)
    journal.close()
    saved = Journal(tmp_path / "journal.sqlite", "s").load()
    again = LiveBroker(venue, 10_000.0, client_id=cid)
    again.restore(saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks)
    again.restore_live(saved.trade_ids, saved.live)
    return again


def bound_gate(broker: LiveBroker) -> PreTradeGate:
    gate = PreTradeGate()
    gate.bind(broker)
    return gate


async def test_a_difference_inside_the_tolerance_is_adopted_and_logged() -> None:
    venue = FakeVenue(cash=9_999.996)  # a regulatory fee of 0.4 cent the book never saw
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    gate = bound_gate(broker)
    with capture_logs() as logs:
        found = await reconcile(
            broker, gate, on_mismatch="halt", since_ns=T0, log=structlog.get_logger()
        )
    assert found == []
    assert broker.cash == 9_999.996
    assert gate.mode is GateMode.NORMAL
    adjusted = next(x for x in logs if x["event"] == "reconciliation_adjusted")
    assert adjusted["differences"] == ["cash: journal 10000.0, venue 9999.996"]
    assert broker.ledger.adjustments["cash"] == pytest.approx(-0.004)


@pytest.mark.parametrize(("mode", "want"), [("halt", "halted"), ("reduce_only", "reduce_only")])
async def test_a_difference_beyond_the_tolerance_takes_the_configured_action(
    mode: str, want: str
) -> None:
    venue = FakeVenue(cash=9_990.0)
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    gate = bound_gate(broker)
    tolerance = Tolerance(qty=1e-9, cash=5.0)  # 10 USDT off: beyond 5
    with capture_logs() as logs:
        found = await reconcile(
            broker,
            gate,
            on_mismatch=mode,
            since_ns=T0,
            log=structlog.get_logger(),
            tolerance=tolerance,
        )
    assert found == ["cash: journal 10,000.00, venue 9,990.00"]
    assert gate.mode.value == want
    assert broker.cash == 9_990.0  # the venue is the authority
    events = [x["event"] for x in logs]
    assert events == ["reconciliation_second_look", "reconciliation_mismatch"]


async def test_fees_paid_in_a_third_asset_are_added_back_before_comparing_cash() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, fractional=True, client_id=cid)
    broker.marks["BTCUSDT"] = 100.0
    broker.submit("BTCUSDT", Side.BUY, 1.0)
    await broker.send()
    trade = venue.fill("cid1", "t1", 1.0, 100.0, 0.0)  # the venue's USDT pays 100 only
    broker.apply(
        Execution(
            "t1", "cid1", "BTCUSDT", Side.BUY, 1.0, 100.0, 0.075, trade.ts_ns,
            commission_asset="BNB", commission_paid=0.00025,
        )
    )  # fmt: skip
    assert venue.cash - broker.cash == pytest.approx(0.075)  # 7.5 cent: beyond 1 cent
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    assert await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert gate.mode is GateMode.NORMAL
    assert broker.cash == pytest.approx(10_000.0 - 100.075)  # the fee stays booked


async def test_what_reconciliation_adopted_survives_a_restart(tmp_path: Path) -> None:
    venue = FakeVenue(cash=9_999.996)
    venue.positions = {"A": 2.0}
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    log: Any = structlog.get_logger()
    await reconcile(broker, bound_gate(broker), on_mismatch="halt", since_ns=T0, log=log)
    again = restarted(broker, venue, tmp_path)
    assert again.cash == 9_999.996
    assert again.position("A") == 2.0
    gate = bound_gate(again)
    with capture_logs() as logs:
        assert await reconcile(again, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert [x["event"] for x in logs] == ["reconciled"]  # nothing left to adjust


async def test_a_fill_racing_the_snapshot_is_not_a_mismatch() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    broker.submit("A", Side.BUY, 5)
    await broker.send()
    real_snapshot = venue.snapshot
    raced = [False]

    async def snapshot() -> VenueSnapshot:
        if not raced[0]:  # the venue fills between our fetch of fills and its snapshot
            raced[0] = True
            venue.fill("cid1", "t1", 5, 10.0, 0.0)
        return await real_snapshot()

    venue.snapshot = snapshot  # type: ignore[method-assign]
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    assert await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert gate.mode is GateMode.NORMAL
    assert broker.position("A") == 5
    assert broker.ledger.adjustments == {"cash": 0.0, "positions": {}}  # booked as a fill


async def test_an_order_being_looked_up_is_not_a_difference() -> None:
    venue = FakeVenue()
    venue.faults = [OutcomeUnknownError("timeout before the venue saw it")]
    broker = LiveBroker(venue, 10_000.0, client_id=cid, unknown_deadline_s=60)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5)
    await broker.send()
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    assert await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert order.status is OrderStatus.UNKNOWN  # still being looked up, within its deadline
    assert gate.mode is GateMode.NORMAL


async def test_an_unknown_order_the_venue_lists_as_open_is_settled_by_the_snapshot() -> None:
    venue = FakeVenue()
    venue.faults = ["after"]
    broker = LiveBroker(venue, 10_000.0, client_id=cid, clock=lambda: 0.0)
    broker.marks["A"] = 10.0
    order = broker.submit("A", Side.BUY, 5, order_type=OrderType.LIMIT, limit_price=9.0)
    await broker.send()
    broker.lookups.missed("cid1", 0.0)  # a lookup just failed: the next is not due yet
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    assert await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert order.status is OrderStatus.ACCEPTED


class FeeVenue(FakeVenue):
    """A FakeVenue that is an AccountFeeSource: regulatory fees outside any fill."""

    def __init__(self) -> None:
        super().__init__()
        self.account_fees: list[AccountFee] = []

    def charge(self, fee: AccountFee) -> None:
        self.account_fees.append(fee)
        self.cash -= fee.amount

    async def fees(self, since_ns: int) -> list[AccountFee]:
        return [f for f in self.account_fees if f.ts_ns >= since_ns]


async def test_account_fees_outside_fills_are_booked_once_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    venue = FeeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    started = broker.ledger.account_fees["since_ns"]
    venue.account_fees.append(AccountFee("old", 9.99, started - 1, "FEE before this run"))
    # Alpaca's FEE (SEC) and CFEE (TAF) activities after a sale: 3 + 4 cents, beyond 1 cent
    venue.charge(AccountFee("fee-1", 0.03, started + 1, "REG"))
    venue.charge(AccountFee("fee-2", 0.04, started + 2, "TAF"))
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    assert await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log) == []
    assert broker.cash == pytest.approx(10_000.0 - 0.07)  # each once; the old one not at all
    assert broker.portfolio.commission_paid == pytest.approx(0.07)  # a cost of the run
    assert gate.mode is GateMode.NORMAL
    again = restarted(broker, venue, tmp_path)
    assert again.cash == pytest.approx(10_000.0 - 0.07)
    assert await reconcile(again, bound_gate(again), on_mismatch="halt", since_ns=T0, log=log) == []
    assert again.cash == pytest.approx(10_000.0 - 0.07)


async def test_a_fill_right_after_the_snapshot_is_not_a_mismatch_nor_undone() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks.update({"A": 10.0, "B": 20.0})
    broker.submit("A", Side.BUY, 5)
    broker.submit("B", Side.BUY, 2)
    await broker.send()
    venue.fill("cid1", "t1", 5, 10.0, 0.05)
    real_snapshot = venue.snapshot

    async def snapshot() -> VenueSnapshot:
        taken = await real_snapshot()  # the venue's account as of now...
        venue.fill("cid2", "t2", 2, 20.0, 0.04)  # ...then B fills before we look again
        return taken

    venue.snapshot = snapshot  # type: ignore[method-assign]
    gate = bound_gate(broker)
    with capture_logs() as logs:
        found = await reconcile(
            broker, gate, on_mismatch="halt", since_ns=T0, log=structlog.get_logger()
        )
    assert found == []
    assert [x["event"] for x in logs] == ["reconciled"]  # no second look, nothing adjusted
    assert (broker.position("A"), broker.position("B")) == (5, 2)  # t2 kept, not undone
    assert broker.cash == pytest.approx(venue.cash)


async def test_a_real_difference_is_found_even_while_the_account_trades() -> None:
    venue = FakeVenue()
    venue.positions = {"C": 3.0}  # bought by hand at the venue: the journal never saw it
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks.update({"A": 10.0, "C": 1.0})
    broker.submit("A", Side.BUY, 5)
    await broker.send()
    real_snapshot = venue.snapshot

    async def snapshot() -> VenueSnapshot:
        taken = await real_snapshot()
        if "t1" not in {t.trade_id for t in venue.trades}:
            venue.fill("cid1", "t1", 5, 10.0, 0.0)
        return taken

    venue.snapshot = snapshot  # type: ignore[method-assign]
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    found = await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log)
    assert found == ["position C: journal 0, venue 3"]
    assert gate.mode is GateMode.HALTED
    assert (broker.position("A"), broker.position("C")) == (5, 3)  # adopted, t1 kept


async def test_fills_the_executions_report_a_look_late_on_two_assets_are_not_a_mismatch() -> None:
    # A venue whose fills endpoint trails its positions by a moment: on the first look it
    # holds A its executions do not report yet; on the second A is reported but B, filled
    # meanwhile, is not. Each difference was seen once, with its own numbers: a third look
    # finds the book whole, and nothing is halted or adopted (two looks halted it).
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks.update({"A": 10.0, "B": 20.0})
    broker.submit("A", Side.BUY, 5)
    broker.submit("B", Side.BUY, 2)
    await broker.send()
    venue.fill("cid1", "t1", 5, 10.0, 0.0)
    hidden = {"t1"}
    looks = [0]
    real_recent, real_snapshot = venue.recent_executions, venue.snapshot

    async def recent_executions(since_ns: int) -> list[Execution]:
        return [t for t in await real_recent(since_ns) if t.trade_id not in hidden]

    async def snapshot() -> VenueSnapshot:
        looks[0] += 1
        if looks[0] == 2:  # A's fill is reported now; B fills and is not, yet
            hidden.discard("t1")
            venue.fill("cid2", "t2", 2, 20.0, 0.0)
            hidden.add("t2")
        if looks[0] == 3:
            hidden.clear()
        return await real_snapshot()

    venue.recent_executions = recent_executions  # type: ignore[method-assign]
    venue.snapshot = snapshot  # type: ignore[method-assign]
    gate = bound_gate(broker)
    with capture_logs() as logs:
        found = await reconcile(
            broker, gate, on_mismatch="halt", since_ns=T0, log=structlog.get_logger()
        )
    assert found == []
    assert gate.mode is GateMode.NORMAL
    looked = [x["differences"] for x in logs if x["event"] == "reconciliation_second_look"]
    assert [d for d in looked[0] if d.startswith("position")] == ["position A: journal 0, venue 5"]
    assert [d for d in looked[1] if d.startswith("position")] == ["position B: journal 0, venue 2"]
    assert len(looked) == 2  # the cash differed on both looks, by a different amount
    assert [x["event"] for x in logs][-1] == "reconciled"
    assert (broker.position("A"), broker.position("B")) == (5, 2)  # booked as fills
    assert broker.ledger.adjustments == {"cash": 0.0, "positions": {}}


async def test_a_difference_seen_on_two_looks_in_a_row_is_a_mismatch_at_once() -> None:
    venue = FakeVenue()
    venue.positions = {"C": 3.0}  # never in the journal: the same subject on both looks
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["C"] = 1.0
    calls = [0]
    real_snapshot = venue.snapshot

    async def snapshot() -> VenueSnapshot:
        calls[0] += 1
        return await real_snapshot()

    venue.snapshot = snapshot  # type: ignore[method-assign]
    gate = bound_gate(broker)
    log: Any = structlog.get_logger()
    found = await reconcile(broker, gate, on_mismatch="halt", since_ns=T0, log=log)
    assert found == ["position C: journal 0, venue 3"]
    assert calls[0] == 2  # confirmed by the second look: no third
    assert gate.mode is GateMode.HALTED


async def test_a_snapshot_of_two_calls_with_fills_between_them_is_not_a_mismatch() -> None:
    # Alpaca's snapshot is GET /v2/account, then GET /v2/positions: an account trading all
    # the while gives the cash before a fill and the positions after it, at every look (the
    # soak matrix, 20 bars a second, halted healthy runs so). Positions and cash are each
    # matched with the book before some fill of the pass: every look agrees.
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks.update({"A": 10.0, "B": 20.0, "C": 5.0})
    for asset, qty in (("A", 5), ("B", 2), ("C", 4)):
        broker.submit(asset, Side.BUY, qty)
    await broker.send()
    pending = [("cid1", "t1", 5, 10.0), ("cid2", "t2", 2, 20.0), ("cid3", "t3", 4, 5.0)]
    real_snapshot = venue.snapshot

    async def snapshot() -> VenueSnapshot:
        cash = venue.cash  # the account call...
        if pending:
            venue.fill(*pending.pop(0), 0.0)  # ...a fill...
        taken = await real_snapshot()  # ...then the positions call
        return VenueSnapshot(cash, taken.positions, taken.open_orders)

    venue.snapshot = snapshot  # type: ignore[method-assign]
    gate = bound_gate(broker)
    with capture_logs() as logs:
        for _ in range(3):
            found = await reconcile(
                broker, gate, on_mismatch="halt", since_ns=T0, log=structlog.get_logger()
            )
            assert found == []
    assert [x["event"] for x in logs] == ["reconciled"] * 3
    assert gate.mode is GateMode.NORMAL
    assert (broker.position("A"), broker.position("B"), broker.position("C")) == (5, 2, 4)
    assert broker.cash == pytest.approx(10_000.0 - 50 - 40 - 20)
