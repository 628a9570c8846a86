"""Declarative strategies under the module name the design documents use.

``from ml4t.backtest.strategies import SignalStrategy, Rule`` runs as
``from tradeloop.strategies import SignalStrategy, Rule``.
"""

from tradeloop.strategy.declarative import FixedSizer, PercentSizer, Rule, SignalStrategy

__all__ = ["FixedSizer", "PercentSizer", "Rule", "SignalStrategy"]
