"""Data in: historical feeds, market context and feature providers. Pure: history only."""

from typing import Any

from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context, ContextSnapshot
from tradeloop.data.features import (
    CallableFeatureProvider,
    FeatureProvider,
    PrecomputedFeatureProvider,
)
from tradeloop.data.feed import HistoricalFeed


def __getattr__(name: str) -> Any:
    """The design documents' older names (``tradeloop.compat``) still resolve here."""
    if name in ("HistoricalDataFeed", "ParquetDataFeed"):
        import tradeloop.compat

        return getattr(tradeloop.compat, name)
    raise AttributeError(f"module 'tradeloop.data' has no attribute {name!r}")


__all__ = [
    "BarTable",
    "CallableFeatureProvider",
    "Context",
    "ContextSnapshot",
    "FeatureProvider",
    "HistoricalFeed",
    "PrecomputedFeatureProvider",
]
