"""Reconciliation: the journal's book against the venue's, at start and every few minutes.

``differences`` is pure: it names every position, open order and cash balance on which the
two disagree by more than the tolerance (``[venue] qty_tolerance``, ``cash_tolerance``);
``adjustments`` names the disagreements inside it (a regulatory fee of a cent, a rounding
of the last digit). ``reconcile`` is the procedure around them:

1. look up orders whose outcome is unknown, book the fills the journal missed
   (``recent_executions``) and the account fees outside fills (``AccountFeeSource``: Alpaca
   FEE/CFEE, once per id), take the venue's snapshot and settle the orders it disagrees on;
2. compare. The cash compared is the book's plus the value of fees paid in a third asset
   (booked as costs, but they never left the cash balance);
3. agreement within the tolerance: the book takes the venue's numbers, logged as
   ``reconciliation_adjusted`` with each difference; nothing else changes;
4. a difference beyond it: the venue is asked once more (a fill racing the snapshot shows
   up as a difference that the second look does not repeat); if it stays, the book takes
   the venue's numbers and the gate goes to ``on_mismatch`` (``halted`` or
   ``reduce_only``), with every difference in the log and in the gate's reason.

Orders of unknown outcome are not differences: they are being looked up (they count as
working until then). A strategy is started only after the first reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradeloop.broker.live import LiveBroker
from tradeloop.events import OrderStatus
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.venue import AccountFeeSource, VenueSnapshot

__all__ = ["Tolerance", "adjustments", "differences", "reconcile"]


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far the book may be from the venue before it counts as a mismatch."""

    qty: float = 1e-9
    cash: float = 0.01


def differences(
    positions: Mapping[str, float],
    cash: float,
    open_client_ids: set[str],
    snapshot: VenueSnapshot,
    *,
    cash_tolerance: float = 0.01,
    qty_tolerance: float = 1e-9,
) -> list[str]:
    """What the journal's book and the venue's snapshot disagree on (empty: they agree)."""
    found = []
    venue_positions = snapshot.positions
    for asset_id in sorted(set(positions) | set(venue_positions)):
        ours, theirs = positions.get(asset_id, 0.0), venue_positions.get(asset_id, 0.0)
        if abs(ours - theirs) > qty_tolerance:
            found.append(f"position {asset_id}: journal {ours:g}, venue {theirs:g}")
    venue_open = {state.client_order_id for state in snapshot.open_orders}
    found += [
        f"order {cid} is open at the venue but not in the journal"
        for cid in sorted(venue_open - open_client_ids)
    ]
    found += [
        f"order {cid} is open in the journal but not at the venue"
        for cid in sorted(open_client_ids - venue_open)
    ]
    if abs(cash - snapshot.cash) > cash_tolerance:
        found.append(f"cash: journal {cash:,.2f}, venue {snapshot.cash:,.2f}")
    return found


def adjustments(positions: Mapping[str, float], cash: float, snapshot: VenueSnapshot) -> list[str]:
    """Every nonzero difference of positions and cash, however small (for the log)."""
    found = []
    for asset_id in sorted(set(positions) | set(snapshot.positions)):
        ours, theirs = positions.get(asset_id, 0.0), snapshot.positions.get(asset_id, 0.0)
        if ours != theirs:
            found.append(f"position {asset_id}: journal {ours!r}, venue {theirs!r}")
    if cash != snapshot.cash:
        found.append(f"cash: journal {cash!r}, venue {snapshot.cash!r}")
    return found


async def reconcile(
    broker: LiveBroker,
    gate: PreTradeGate,
    *,
    on_mismatch: str,
    since_ns: int,
    log: Any,
    tolerance: Tolerance | None = None,
) -> list[str]:
    """Bring the book up to date with the venue; return the differences that remained."""
    limits = tolerance or Tolerance()
    snapshot, found = await _compare(broker, since_ns, limits)
    if found:  # a second look: a fill that raced the first snapshot is booked by now
        log.warning("reconciliation_second_look", differences=found)
        snapshot, found = await _compare(broker, since_ns, limits)
    positions, cash = _book(broker)
    small = adjustments(positions, cash, snapshot)
    if not found:
        if small:
            broker.adopt(snapshot)
            log.warning("reconciliation_adjusted", differences=small)
        log.info("reconciled", positions=len(snapshot.positions), open_orders=_open_count(broker))
        return found
    broker.adopt(snapshot)
    mode = GateMode.HALTED if on_mismatch == "halt" else GateMode.REDUCE_ONLY
    gate.set_mode(mode, "reconciliation: " + "; ".join(found))
    log.error("reconciliation_mismatch", differences=found, mode=mode.value)
    return found


async def _compare(
    broker: LiveBroker, since_ns: int, limits: Tolerance
) -> tuple[VenueSnapshot, list[str]]:
    await broker.resolve()
    for execution in await broker.client.recent_executions(since_ns):
        broker.apply(execution)
    if isinstance(broker.client, AccountFeeSource):
        for fee in await broker.client.fees(broker.ledger.account_fees["since_ns"]):
            broker.book_fee(fee)
    snapshot = await broker.client.snapshot()
    await broker.settle(snapshot)
    positions, cash = _book(broker)
    # open_orders() includes those whose outcome is still unknown: they are being looked up
    known = {o.client_order_id for o in broker.open_orders() if o.status is not OrderStatus.UNKNOWN}
    unknown = {o.client_order_id for o in broker.open_orders()} - known
    venue = VenueSnapshot(
        snapshot.cash,
        snapshot.positions,
        [s for s in snapshot.open_orders if s.client_order_id not in unknown],
    )
    found = differences(
        positions, cash, known, venue, cash_tolerance=limits.cash, qty_tolerance=limits.qty
    )
    return snapshot, found


def _book(broker: LiveBroker) -> tuple[dict[str, float], float]:
    positions = {a: p.qty for a, p in broker.positions().items() if p.qty}
    return positions, broker.cash + broker.ledger.elsewhere_value()


def _open_count(broker: LiveBroker) -> int:
    return len(broker.open_orders())
