"""Declarative strategies: entry and exit rules plus a sizer, no code.

``SignalStrategy`` is an ordinary Strategy (so it runs on the event path, on paper and live),
and its rules are plain data, so a replay can also run it as one compiled numba kernel with the
same fills (see ``runtime/compiled.py``).

Semantics, shared by both paths. Each bar of each asset, after that timestamp's fills:
- an asset with an open order is left alone;
- flat: if every entry rule holds, buy with the sizer (market, next open);
- long: the first exit rule that holds closes the position (market, next open), and its name
  becomes the exit reason.
One position per asset, long only; ``Rule.not_in_position()`` states that explicitly.
``Rule.stop_loss``/``take_profit`` compare the bar's close with the entry (average) price; for
intrabar stops use the RiskManager.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tradeloop.errors import ConfigError
from tradeloop.events import MarketEvent
from tradeloop.strategy.base import Strategy

__all__ = [
    "CompileFallbackWarning",
    "FixedSizer",
    "PercentSizer",
    "Rule",
    "RuleKind",
    "SignalStrategy",
]


class CompileFallbackWarning(UserWarning):
    """A SignalStrategy ran on the (slower, equivalent) event path instead of compiled."""


class RuleKind(IntEnum):
    SIGNAL_ABOVE = 0
    SIGNAL_BELOW = 1
    CONTEXT_ABOVE = 2
    CONTEXT_BELOW = 3
    STOP_LOSS = 4
    TAKE_PROFIT = 5
    NOT_IN_POSITION = 6


@dataclass(frozen=True, slots=True)
class Rule:
    """One condition. Build with the class methods: ``Rule.signal_above("ml_pred", 0.8)``."""

    kind: RuleKind
    name: str = ""
    threshold: float = math.nan

    @classmethod
    def signal_above(cls, name: str, threshold: float) -> Rule:
        return cls(RuleKind.SIGNAL_ABOVE, name, float(threshold))

    @classmethod
    def signal_below(cls, name: str, threshold: float) -> Rule:
        return cls(RuleKind.SIGNAL_BELOW, name, float(threshold))

    @classmethod
    def context_above(cls, name: str, threshold: float) -> Rule:
        return cls(RuleKind.CONTEXT_ABOVE, name, float(threshold))

    @classmethod
    def context_below(cls, name: str, threshold: float) -> Rule:
        return cls(RuleKind.CONTEXT_BELOW, name, float(threshold))

    @classmethod
    def stop_loss(cls, pct: float) -> Rule:
        return cls(RuleKind.STOP_LOSS, "", float(pct))

    @classmethod
    def take_profit(cls, pct: float) -> Rule:
        return cls(RuleKind.TAKE_PROFIT, "", float(pct))

    @classmethod
    def not_in_position(cls) -> Rule:
        return cls(RuleKind.NOT_IN_POSITION)

    @property
    def label(self) -> str:
        """The exit reason this rule writes into fills and trades."""
        symbols = {
            RuleKind.SIGNAL_ABOVE: f"signal_above({self.name}>{self.threshold:g})",
            RuleKind.SIGNAL_BELOW: f"signal_below({self.name}<{self.threshold:g})",
            RuleKind.CONTEXT_ABOVE: f"context_above({self.name}>{self.threshold:g})",
            RuleKind.CONTEXT_BELOW: f"context_below({self.name}<{self.threshold:g})",
            RuleKind.STOP_LOSS: "stop_loss",
            RuleKind.TAKE_PROFIT: "take_profit",
            RuleKind.NOT_IN_POSITION: "not_in_position",
        }
        return symbols[self.kind]

    def holds(self, event: MarketEvent, context: Mapping[str, Any], pnl_pct: float | None) -> bool:
        """Evaluate on the event path (missing or NaN values never hold)."""
        kind = self.kind
        if kind is RuleKind.SIGNAL_ABOVE:
            return bool(event.signals[self.name] > self.threshold)
        if kind is RuleKind.SIGNAL_BELOW:
            return bool(event.signals[self.name] < self.threshold)
        if kind is RuleKind.CONTEXT_ABOVE or kind is RuleKind.CONTEXT_BELOW:
            value = context.get(self.name)
            if value is None:
                return False
            return bool(
                value > self.threshold if kind is RuleKind.CONTEXT_ABOVE else value < self.threshold
            )
        if kind is RuleKind.STOP_LOSS:
            return pnl_pct is not None and pnl_pct <= -self.threshold
        if kind is RuleKind.TAKE_PROFIT:
            return pnl_pct is not None and pnl_pct >= self.threshold
        return True  # NOT_IN_POSITION: entries happen only when flat anyway


@dataclass(frozen=True, slots=True)
class PercentSizer:
    """Buy ``percent`` of portfolio value (``Strategy.buy_percent``)."""

    percent: float

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 10:
            raise ConfigError(f"PercentSizer percent must be in (0, 10], got {self.percent}")


@dataclass(frozen=True, slots=True)
class FixedSizer:
    """Buy a fixed number of shares."""

    qty: float

    def __post_init__(self) -> None:
        if not self.qty > 0:
            raise ConfigError(f"FixedSizer qty must be > 0, got {self.qty}")


class SignalStrategy(Strategy):
    """Enter when every entry rule holds, exit when any exit rule holds (see module doc)."""

    def __init__(
        self,
        entry_rules: Sequence[Rule],
        exit_rules: Sequence[Rule],
        position_sizer: PercentSizer | FixedSizer = PercentSizer(0.95),
        *,
        compile: bool = True,
    ) -> None:
        super().__init__()
        self.entry_rules = list(entry_rules)
        self.exit_rules = list(exit_rules)
        self.position_sizer = position_sizer
        self.compile = compile
        for rule in (*self.entry_rules, *self.exit_rules):
            if not isinstance(rule, Rule):
                raise ConfigError(
                    f"{rule!r} is not a Rule; build rules with Rule.signal_above(...)"
                )
        if not self.entry_rules:
            raise ConfigError("a SignalStrategy needs at least one entry rule")

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        asset = event.asset_id
        if self.get_open_orders(asset):
            return
        position = self.get_position(asset)
        if position == 0:
            if all(rule.holds(event, context, None) for rule in self.entry_rules):
                sizer = self.position_sizer
                if isinstance(sizer, PercentSizer):
                    self.buy_percent(asset, sizer.percent)
                else:
                    self.buy(asset, sizer.qty)
        elif position > 0:
            pnl_pct = self.get_unrealized_pnl_pct(asset)
            for rule in self.exit_rules:
                if rule.holds(event, context, pnl_pct):
                    self.close_position(asset, reason=rule.label)
                    return
