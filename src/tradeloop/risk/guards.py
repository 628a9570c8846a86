"""Portfolio guards: pre-trade checks on orders that add exposure. Pure.

A guard sees an ``OrderCheck`` and returns the quantity it allows (possibly less, possibly 0)
and why. Orders that reduce a position always pass untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tradeloop.errors import ConfigError

__all__ = ["MaxDrawdownHalt", "MaxExposure", "MaxPositionSize", "OrderCheck", "PortfolioGuard"]


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """An order that would add exposure, and the account it would land in."""

    asset_id: str
    side_sign: int  # +1 buy, -1 sell
    qty: float
    price: float  # the reference price (latest close, or the limit)
    position: float  # signed, including open orders on this asset
    equity: float
    gross_exposure: float  # Σ |qty × mark| of positions plus open orders that add exposure
    drawdown: float  # equity / running peak − 1 (≤ 0)
    fractional: bool
    timestamp: object = None  # when the order is placed


@runtime_checkable
class PortfolioGuard(Protocol):
    name: str

    def allow(self, check: OrderCheck) -> tuple[float, str]: ...


def _whole(qty: float, fractional: bool) -> float:
    return max(qty, 0.0) if fractional else float(math.floor(max(qty, 0.0) + 1e-9))


@dataclass(frozen=True, slots=True)
class MaxPositionSize:
    """No position worth more than ``max_pct`` of equity: larger orders are cut to fit."""

    max_pct: float
    name: str = "max_position_size"

    def __post_init__(self) -> None:
        if not self.max_pct > 0:
            raise ConfigError(f"MaxPositionSize max_pct must be > 0, got {self.max_pct}")

    def allow(self, check: OrderCheck) -> tuple[float, str]:
        room = self.max_pct * check.equity - abs(check.position) * check.price
        allowed = min(check.qty, _whole(room / check.price, check.fractional))
        if allowed < check.qty:
            return allowed, (
                f"{self.name}: cut to {allowed:g} to keep {check.asset_id} within "
                f"{self.max_pct:.0%} of equity"
            )
        return check.qty, ""


@dataclass(frozen=True, slots=True)
class MaxExposure:
    """Gross exposure (Σ |position value|) at most ``max_gross_pct`` of equity."""

    max_gross_pct: float = 1.0
    name: str = "max_exposure"

    def __post_init__(self) -> None:
        if not self.max_gross_pct > 0:
            raise ConfigError(f"max_gross_pct must be > 0, got {self.max_gross_pct}")

    def allow(self, check: OrderCheck) -> tuple[float, str]:
        room = self.max_gross_pct * check.equity - check.gross_exposure
        allowed = min(check.qty, _whole(room / check.price, check.fractional))
        if allowed < check.qty:
            return allowed, (
                f"{self.name}: cut to {allowed:g} to keep gross exposure within "
                f"{self.max_gross_pct:.0%} of equity"
            )
        return check.qty, ""


@dataclass(slots=True)
class MaxDrawdownHalt:
    """Once equity falls ``max_drawdown`` below its peak, no new exposure for the rest of
    the run (exits still work). ``halted_at`` records when it tripped."""

    max_drawdown: float = 0.2
    name: str = "max_drawdown_halt"
    halted_at: object = None

    def __post_init__(self) -> None:
        if not 0 < self.max_drawdown < 1:
            raise ConfigError(f"max_drawdown must be in (0, 1), got {self.max_drawdown}")

    def trip(self, drawdown: float, when: object) -> None:
        if self.halted_at is None and drawdown <= -self.max_drawdown:
            self.halted_at = when

    def allow(self, check: OrderCheck) -> tuple[float, str]:
        self.trip(check.drawdown, check.timestamp)
        if self.halted_at is not None:
            return 0.0, (
                f"{self.name}: trading halted at {self.halted_at} after a "
                f"{self.max_drawdown:.0%} drawdown; only exits are allowed"
            )
        return check.qty, ""
