"""Data in: historical feeds, market context and feature providers."""

from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context, ContextSnapshot
from tradeloop.data.features import (
    CallableFeatureProvider,
    FeatureProvider,
    PrecomputedFeatureProvider,
)
from tradeloop.data.feed import HistoricalDataFeed, HistoricalFeed, ParquetDataFeed

__all__ = [
    "BarTable",
    "CallableFeatureProvider",
    "Context",
    "ContextSnapshot",
    "FeatureProvider",
    "HistoricalDataFeed",
    "HistoricalFeed",
    "ParquetDataFeed",
    "PrecomputedFeatureProvider",
]
