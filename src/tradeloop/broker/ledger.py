"""VenueLedger: what a live book carries besides its fills, so that its cash and positions
stay the venue's. Pure: no I/O; the time of the first start is passed in.

- Fees paid in a third asset (``Execution.commission_asset``, e.g. BNB for a BTCUSDT
  trade) are booked at their value like any commission, but never left the cash balance:
  ``elsewhere_value()`` is added back to the book's cash before it is compared with the
  venue's.
- Account fees outside any fill (Alpaca's FEE/CFEE regulatory fees, ``AccountFee``) are
  taken from cash once per venue id, and only those charged after the run's first start
  (the account's cash then is the run's capital).
- What reconciliation adopts from the venue (``adopt``: its positions and cash are the
  authority) is kept as adjustments.

``state()`` is journaled with every commit; ``restore`` re-applies it after the journaled
fills, so a restarted daemon rebuilds the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tradeloop.portfolio import Portfolio, Position
from tradeloop.venue import AccountFee, Execution, VenueSnapshot

__all__ = ["VenueLedger"]


class VenueLedger:
    """Third-asset fees, account fees and adoptions of one live book (see the module)."""

    def __init__(self, portfolio: Portfolio, started_ns: int) -> None:
        self.portfolio = portfolio
        self.fees_elsewhere: dict[str, list[float]] = {}  # asset → [amount paid, value booked]
        self.adjustments: dict[str, Any] = {"cash": 0.0, "positions": {}}
        self.account_fees: dict[str, Any] = {"since_ns": started_ns, "ids": [], "total": 0.0}

    def note_fill(self, execution: Execution) -> None:
        """Remember a fill's fee if it was paid in a third asset."""
        if execution.commission_asset:
            paid = self.fees_elsewhere.setdefault(execution.commission_asset, [0.0, 0.0])
            paid[0] += execution.commission_paid
            paid[1] += execution.commission

    def elsewhere_value(self) -> float:
        """The cash value of fees paid in third assets: booked, but not out of cash."""
        return sum(value for _, value in self.fees_elsewhere.values())

    def book_fee(self, fee: AccountFee) -> bool:
        """Take an account fee from cash (once per id, none from before the first start);
        True if it was new."""
        booked = self.account_fees
        if fee.fee_id in booked["ids"] or fee.ts_ns < booked["since_ns"]:
            return False
        booked["ids"].append(fee.fee_id)
        booked["total"] += fee.amount
        self.portfolio.cash -= fee.amount
        self.portfolio.commission_paid += fee.amount
        return True

    def adopt(self, snapshot: VenueSnapshot, position: Callable[[str], Position]) -> None:
        """Make the book the venue's (``position(asset)`` gives or creates the book's)."""
        positions = self.portfolio.positions
        moved: dict[str, float] = self.adjustments["positions"]
        for asset_id in {*snapshot.positions, *positions}:
            target = snapshot.positions.get(asset_id, 0.0)
            held = position(asset_id)
            if held.qty != target:
                moved[asset_id] = moved.get(asset_id, 0.0) + target - held.qty
                held.qty = target
            if target == 0:
                del positions[asset_id]
        cash = snapshot.cash - self.elsewhere_value()
        self.adjustments["cash"] += cash - self.portfolio.cash
        self.portfolio.cash = cash

    def state(self) -> dict[str, Any]:
        return {
            "fees_elsewhere": self.fees_elsewhere,
            "adjustments": self.adjustments,
            "account_fees": self.account_fees,
        }

    def restore(self, state: Mapping[str, Any], position: Callable[[str], Position]) -> None:
        """Re-apply a journaled ``state()`` (after the journaled fills were re-applied)."""
        self.fees_elsewhere = {a: list(v) for a, v in state.get("fees_elsewhere", {}).items()}
        adjusted = state.get("adjustments", {"cash": 0.0, "positions": {}})
        self.portfolio.cash += adjusted["cash"]
        for asset_id, delta in adjusted["positions"].items():
            position(asset_id).qty += delta
        self.adjustments = {"cash": adjusted["cash"], "positions": dict(adjusted["positions"])}
        fees = state.get("account_fees")
        if fees is not None:
            self.account_fees = {
                "since_ns": fees["since_ns"],
                "ids": list(fees["ids"]),
                "total": fees["total"],
            }
            self.portfolio.cash -= fees["total"]
            self.portfolio.commission_paid += fees["total"]
