"""Reconciliation: the journal's book against the venue's, at start and every few minutes.

``differences`` is pure: it names every position, open order and cash balance on which the
two disagree. ``reconcile`` is the procedure around it: look up orders whose outcome is
unknown, book the fills the journal missed (``recent_executions``), compare, and on a
mismatch make the venue's positions and cash the book's (the venue is the authority) and
put the gate in ``halted`` or ``reduce_only``, saying exactly what differed. A strategy is
started only after the first reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloop.broker.live import LiveBroker
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.venue import VenueSnapshot

__all__ = ["differences", "reconcile"]


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


async def reconcile(
    broker: LiveBroker,
    gate: PreTradeGate,
    *,
    on_mismatch: str,
    since_ns: int,
    log: Any,
) -> list[str]:
    """Bring the book up to date with the venue; return the differences that remained."""
    await broker.resolve()
    for execution in await broker.client.recent_executions(since_ns):
        broker.apply(execution)
    snapshot = await broker.client.snapshot()
    await broker.settle({state.client_order_id for state in snapshot.open_orders})
    # open_orders() includes those whose outcome is still unknown: they may be live
    open_ids = {o.client_order_id for o in broker.open_orders()}
    positions = {a: p.qty for a, p in broker.positions().items() if p.qty}
    found = differences(positions, broker.cash, open_ids, snapshot)
    if not found:
        log.info("reconciled", positions=len(snapshot.positions), open_orders=len(open_ids))
        return found
    broker.adopt(snapshot)
    mode = GateMode.HALTED if on_mismatch == "halt" else GateMode.REDUCE_ONLY
    reason = "reconciliation: " + "; ".join(found)
    gate.set_mode(mode, reason)
    log.error("reconciliation_mismatch", differences=found, mode=mode.value)
    return found
