"""What a risk rule decides for one position at one bar, and how decisions combine. Pure.

A rule returns a ``RiskDecision``: exit now, and/or a stop level, and/or a take-profit level.
``RiskDecision.merge`` combines every rule's decision into one ``RiskPlan``: for each of the
three, the highest priority wins; among stops (or targets) of equal priority the tighter one
wins, i.e. the level closer to the price (more conservative).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["RiskDecision", "RiskPlan"]


@dataclass(frozen=True, slots=True)
class RiskPlan:
    """The merged decision for one position at one bar (levels are prices)."""

    exit_reason: str | None = None
    exit_priority: int = 0
    stop_price: float | None = None
    stop_reason: str = ""
    stop_priority: int = 0
    take_profit_price: float | None = None
    take_profit_reason: str = ""
    take_profit_priority: int = 0


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """One rule's view: ``exit_now`` (at this bar's open), ``stop_price``, ``take_profit_price``."""

    exit_now: bool = False
    stop_price: float | None = None
    take_profit_price: float | None = None
    reason: str = ""
    priority: int = 100

    @classmethod
    def hold(cls) -> RiskDecision:
        """Nothing to do."""
        return _HOLD

    @staticmethod
    def merge(decisions: Iterable[RiskDecision], *, long: bool) -> RiskPlan:
        """Combine decisions: highest priority first, then the tighter level."""
        exit_reason: str | None = None
        exit_priority = stop_priority = target_priority = -(10**9)
        stop: float | None = None
        target: float | None = None
        stop_reason = target_reason = ""
        for d in decisions:
            if d.exit_now and d.priority > exit_priority:
                exit_reason, exit_priority = d.reason, d.priority
            if d.stop_price is not None and (
                d.priority > stop_priority
                or (
                    d.priority == stop_priority
                    and stop is not None
                    and (d.stop_price > stop if long else d.stop_price < stop)
                )
            ):
                stop, stop_reason, stop_priority = d.stop_price, d.reason, d.priority
            if d.take_profit_price is not None and (
                d.priority > target_priority
                or (
                    d.priority == target_priority
                    and target is not None
                    and (d.take_profit_price < target if long else d.take_profit_price > target)
                )
            ):
                target, target_reason, target_priority = d.take_profit_price, d.reason, d.priority
        return RiskPlan(
            exit_reason,
            exit_priority,
            stop,
            stop_reason,
            stop_priority,
            target,
            target_reason,
            target_priority,
        )


_HOLD = RiskDecision()
