"""Strategies: the base class users subclass, and declarative rule-based strategies."""

from tradeloop.strategy.base import Strategy
from tradeloop.strategy.declarative import FixedSizer, PercentSizer, Rule, SignalStrategy

__all__ = ["FixedSizer", "PercentSizer", "Rule", "SignalStrategy", "Strategy"]
