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
4. a difference beyond it: the venue is asked again; a difference is confirmed when it is
   found exactly as before (the same position, order or cash, the same numbers) on two
   looks in a row: neither side moved and they still disagree. A look that finds anything
   new (a fill the venue shows before its executions report it, on one asset, then on
   another; the cash moved by it) is not a confirmation: the venue is asked again, up to
   ``MAX_LOOKS`` looks. What stays confirmed (or whatever the last look found): the book
   takes the venue's numbers and the gate goes to ``on_mismatch`` (``halted`` or
   ``reduce_only``), with every difference in the log and in the gate's reason.

An account that trades while its snapshot is taken is not a mismatch: the fills are fetched
again right after the snapshot, and the snapshot is compared with the book as it was before
each of them (it matches one of those states); the positions and the cash are matched each
on its own, since a snapshot of several calls (Alpaca's account, then its positions) may
hold the cash of one moment and the positions of a later one. Orders whose state moved
during the pass are not compared. What is adopted is the venue's numbers moved on by the
fills the snapshot did not include yet. Differences below float noise (1e-9, relative) are
not differences.

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

__all__ = ["MAX_LOOKS", "Tolerance", "adjustments", "differences", "reconcile"]

MAX_LOOKS = 3  # a fill in flight settles within a look; a real difference stays for two


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
    found = _position_differences(positions, snapshot.positions, qty_tolerance)
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


def _position_differences(
    positions: Mapping[str, float], venue_positions: Mapping[str, float], qty_tolerance: float
) -> list[str]:
    found = []
    for asset_id in sorted(set(positions) | set(venue_positions)):
        ours, theirs = positions.get(asset_id, 0.0), venue_positions.get(asset_id, 0.0)
        if abs(ours - theirs) > qty_tolerance:
            found.append(f"position {asset_id}: journal {ours:g}, venue {theirs:g}")
    return found


def adjustments(positions: Mapping[str, float], cash: float, snapshot: VenueSnapshot) -> list[str]:
    """Every difference of positions and cash above float noise, however small (for the
    log)."""
    found = []
    for asset_id in sorted(set(positions) | set(snapshot.positions)):
        ours, theirs = positions.get(asset_id, 0.0), snapshot.positions.get(asset_id, 0.0)
        if not _same(ours, theirs):
            found.append(f"position {asset_id}: journal {ours!r}, venue {theirs!r}")
    if not _same(cash, snapshot.cash):
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
    looks = 1
    while found and looks < MAX_LOOKS:  # a fill that raced the last snapshot is booked by now
        log.warning("reconciliation_second_look", differences=found, look=looks + 1)
        seen = set(found)
        snapshot, found = await _compare(broker, since_ns, limits)
        looks += 1
        if seen.issuperset(found):
            break  # nothing moved: every difference left was there, as it is, a look ago
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
    """Book what the venue has, take its snapshot, and compare. The venue may trade while
    its snapshot is taken: the fills booked around it are fetched again right after, and the
    snapshot is compared with the book before each of them in turn (it agrees with one of
    those states when nothing else is wrong). Returns the venue's numbers moved on by the
    fills the snapshot did not include, and what differs."""
    await broker.resolve()
    for execution in await broker.client.recent_executions(since_ns):
        broker.apply(execution)
    if isinstance(broker.client, AccountFeeSource):
        for fee in await broker.client.fees(broker.ledger.account_fees["since_ns"]):
            broker.book_fee(fee)
    marker, open_before = len(broker.fills), _open_ids(broker)
    snapshot = await broker.client.snapshot()
    for execution in await broker.client.recent_executions(since_ns):  # what traded meanwhile
        broker.apply(execution)
    await broker.settle(snapshot)
    during = sorted(range(marker, len(broker.fills)), key=lambda i: broker.fills[i].ts_ns)
    # orders whose state moved during the pass are not compared: either side may be right
    touched = (open_before ^ _open_ids(broker)) | {
        _cid(broker, broker.fills[i].order_id) for i in during
    }
    unknown = {o.client_order_id for o in broker.open_orders() if o.status is OrderStatus.UNKNOWN}
    known = _open_ids(broker) - touched
    venue = VenueSnapshot(
        snapshot.cash,
        snapshot.positions,
        [s for s in snapshot.open_orders if s.client_order_id not in unknown | touched],
    )
    positions, cash = _book(broker)
    # the book now, then before each fill of the pass. Positions and cash are matched each
    # on its own: a venue whose snapshot is several calls (Alpaca: the account, then the
    # positions) may give the cash of one moment and the positions of a later one
    states = [_undo(broker, positions, cash, during[k:]) for k in range(len(during), -1, -1)]
    pos_k = min(
        range(len(states)),
        key=lambda k: (
            len(_position_differences(states[k][0], venue.positions, limits.qty)),
            sum(
                abs(states[k][0].get(a, 0.0) - venue.positions.get(a, 0.0))
                for a in {*states[k][0], *venue.positions}
            ),
        ),
    )
    cash_k = min(range(len(states)), key=lambda k: abs(states[k][1] - venue.cash))
    then, cash_then = states[pos_k][0], states[cash_k][1]
    found = differences(
        then, cash_then, known, venue, cash_tolerance=limits.cash, qty_tolerance=limits.qty
    )
    moved_on = VenueSnapshot(
        snapshot.cash + (cash - cash_then),
        {
            a: snapshot.positions.get(a, 0.0) + positions.get(a, 0.0) - then.get(a, 0.0)
            for a in {*snapshot.positions, *positions, *then}
        },
        snapshot.open_orders,
    )
    return moved_on, found


def _book(broker: LiveBroker) -> tuple[dict[str, float], float]:
    positions = {a: p.qty for a, p in broker.positions().items() if p.qty}
    return positions, broker.cash + broker.ledger.elsewhere_value()


def _undo(
    broker: LiveBroker, positions: dict[str, float], cash: float, fills: list[int]
) -> tuple[dict[str, float], float]:
    """The book's positions and (compared) cash without the fills at ``fills``."""
    then = dict(positions)
    for i in fills:
        fill = broker.fills[i]
        then[fill.asset_id] = then.get(fill.asset_id, 0.0) - fill.signed_qty
        cash += fill.signed_qty * fill.price + fill.commission
        cash -= broker.elsewhere_by_fill.get(i, 0.0)
    return {a: q for a, q in then.items() if not _same(q, 0.0)}, cash


def _open_ids(broker: LiveBroker) -> set[str]:
    return {o.client_order_id for o in broker.open_orders() if o.status is not OrderStatus.UNKNOWN}


def _cid(broker: LiveBroker, order_id: int) -> str:
    order = broker.book.order(order_id)
    return "" if order is None else order.client_order_id


def _same(a: float, b: float) -> bool:
    """Equal but for float noise (the venues report 8 decimals at most)."""
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _open_count(broker: LiveBroker) -> int:
    return len(broker.open_orders())
