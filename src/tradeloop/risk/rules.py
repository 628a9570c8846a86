"""Protective exit rules. Pure: ``evaluate(RiskContext) -> RiskDecision``.

Levels are prices the RiskManager checks against the next bar's range (see ``manager``).
Write your own rule as any object with ``name``, ``priority`` and ``evaluate(ctx)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tradeloop.errors import ConfigError, UnknownSignalError
from tradeloop.risk.context import RiskContext
from tradeloop.risk.decision import RiskDecision

__all__ = [
    "DynamicTrailingStop",
    "RiskRule",
    "StopLoss",
    "TakeProfit",
    "TimeBasedExit",
    "VolatilityScaledStopLoss",
]


@runtime_checkable
class RiskRule(Protocol):
    name: str
    priority: int

    def evaluate(self, ctx: RiskContext) -> RiskDecision: ...


def _fraction(what: str, value: float, upper: float = 1.0) -> None:
    if not 0 < value < upper:
        raise ConfigError(f"{what} must be in (0, {upper:g}), got {value}")


@dataclass(frozen=True, slots=True)
class StopLoss:
    """Exit when price falls ``pct`` below the entry (rises, for a short)."""

    pct: float
    name: str = "stop_loss"
    priority: int = 100

    def __post_init__(self) -> None:
        _fraction("StopLoss pct", self.pct)

    def evaluate(self, ctx: RiskContext) -> RiskDecision:
        sign = 1.0 if ctx.qty > 0 else -1.0
        return RiskDecision(
            stop_price=ctx.entry_price * (1.0 - sign * self.pct),
            reason=self.name,
            priority=self.priority,
        )


@dataclass(frozen=True, slots=True)
class TakeProfit:
    """Exit when price rises ``pct`` above the entry (falls, for a short)."""

    pct: float
    name: str = "take_profit"
    priority: int = 100

    def __post_init__(self) -> None:
        _fraction("TakeProfit pct", self.pct, upper=100.0)

    def evaluate(self, ctx: RiskContext) -> RiskDecision:
        sign = 1.0 if ctx.qty > 0 else -1.0
        return RiskDecision(
            take_profit_price=ctx.entry_price * (1.0 + sign * self.pct),
            reason=self.name,
            priority=self.priority,
        )


@dataclass(slots=True)
class VolatilityScaledStopLoss:
    """Stop ``atr_multiplier`` × volatility below the entry, with the volatility feature
    (``volatility_key``, e.g. ATR in price units) known when the position was opened; the
    stop then stays put. A position opened while the feature was missing gets no stop from
    this rule, and ``missing`` counts those checks.
    """

    atr_multiplier: float = 2.0
    volatility_key: str = "atr"
    name: str = "volatility_stop"
    priority: int = 100
    missing: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not self.atr_multiplier > 0:
            raise ConfigError(f"atr_multiplier must be > 0, got {self.atr_multiplier}")

    def evaluate(self, ctx: RiskContext) -> RiskDecision:
        features = ctx.entry_features or ctx.features
        if features and self.volatility_key not in features:
            raise UnknownSignalError(
                f"{self.name}: no feature {self.volatility_key!r} for {ctx.asset_id}; features "
                f"are: {', '.join(sorted(features))}. Fix volatility_key= or add the column (a "
                "CallableFeatureProvider's feature is a column from its first value on: "
                f"declare it with asset_features=[{self.volatility_key!r}])."
            )
        vol = features.get(self.volatility_key, math.nan) if features else math.nan
        if not vol > 0:
            self.missing += 1
            return RiskDecision.hold()
        sign = 1.0 if ctx.qty > 0 else -1.0
        return RiskDecision(
            stop_price=ctx.entry_price - sign * self.atr_multiplier * vol,
            reason=self.name,
            priority=self.priority,
        )


@dataclass(frozen=True, slots=True)
class DynamicTrailingStop:
    """Trail the best price since entry by a percentage that narrows as the gain grows.

    trail = max(min_trail_pct, initial_trail_pct − tighten_rate × best gain so far), and the
    stop = high-water mark × (1 − trail) for a long. Both factors only move one way, so the
    stop only tightens.
    """

    initial_trail_pct: float = 0.05
    tighten_rate: float = 0.5
    min_trail_pct: float = 0.02
    name: str = "trailing_stop"
    priority: int = 100

    def __post_init__(self) -> None:
        _fraction("initial_trail_pct", self.initial_trail_pct)
        _fraction("min_trail_pct", self.min_trail_pct)
        if self.min_trail_pct > self.initial_trail_pct or self.tighten_rate < 0:
            raise ConfigError(
                "DynamicTrailingStop needs 0 < min_trail_pct <= initial_trail_pct and "
                f"tighten_rate >= 0; got {self}"
            )

    def evaluate(self, ctx: RiskContext) -> RiskDecision:
        gain = max(ctx.max_favorable_pct, 0.0)
        trail = max(self.min_trail_pct, self.initial_trail_pct - self.tighten_rate * gain)
        stop = (
            ctx.high_water_mark * (1.0 - trail)
            if ctx.qty > 0
            else ctx.low_water_mark * (1.0 + trail)
        )
        return RiskDecision(stop_price=stop, reason=self.name, priority=self.priority)


@dataclass(frozen=True, slots=True)
class TimeBasedExit:
    """Exit at the open of the bar on which the position has been held ``max_bars`` bars."""

    max_bars: int
    name: str = "time_exit"
    priority: int = 50

    def __post_init__(self) -> None:
        if self.max_bars < 1:
            raise ConfigError(f"max_bars must be >= 1, got {self.max_bars}")

    def evaluate(self, ctx: RiskContext) -> RiskDecision:
        if ctx.bars_held >= self.max_bars:
            return RiskDecision(exit_now=True, reason=self.name, priority=self.priority)
        return RiskDecision.hold()
