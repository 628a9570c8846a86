"""RiskContext: everything a rule may look at for one position at one bar. Pure data.

Built once per (asset, bar) and shared by every rule. It describes the world as of the end of
the *previous* bar (features, context, last close, high-water mark): the bar being checked is
unknown to the rules, which is what keeps stop levels free of look-ahead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["RiskContext"]


@dataclass(frozen=True, slots=True)
class RiskContext:
    asset_id: str
    timestamp: datetime  # the bar about to be checked
    qty: float  # signed
    entry_price: float
    entry_time: datetime
    bars_held: int  # bars of this asset since the entry bar (the entry bar is 0)
    high_water_mark: float  # highest high since entry (the entry price on the entry bar)
    low_water_mark: float  # lowest low since entry
    last_close: float
    features: Mapping[str, float]  # the asset's features as of the previous bar
    entry_features: Mapping[str, float]  # the asset's features when the position was opened
    context: Mapping[str, Any]  # market-wide context as of the previous bar

    @property
    def is_long(self) -> bool:
        return self.qty > 0

    @property
    def unrealized_pnl_pct(self) -> float:
        """Return on the entry price at the last close (positive when a short has fallen)."""
        change = self.last_close / self.entry_price - 1.0
        return change if self.qty > 0 else -change

    @property
    def max_favorable_pct(self) -> float:
        """Best return reached since entry (from the high-water mark, or low for a short)."""
        if self.qty > 0:
            return self.high_water_mark / self.entry_price - 1.0
        return 1.0 - self.low_water_mark / self.entry_price
