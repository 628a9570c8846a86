"""Strategies: the base class users subclass."""

from tradeloop.strategy.base import Strategy

__all__ = ["Strategy"]
