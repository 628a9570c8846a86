"""The public surface is small and pinned: a change here is a deliberate API change."""

from __future__ import annotations

import tradeloop
import tradeloop.data

EXPECTED = [
    "BacktestEngine",
    "BacktestResult",
    "BpsSlippage",
    "CallableFeatureProvider",
    "CompileFallbackWarning",
    "ConfigError",
    "Context",
    "DataError",
    "Engine",
    "Fill",
    "FixedCommission",
    "FixedSizer",
    "HistoricalDataFeed",
    "HistoricalFeed",
    "MarketEvent",
    "OrderError",
    "ParquetDataFeed",
    "PerShareCommission",
    "PercentCommission",
    "PercentSizer",
    "PrecomputedFeatureProvider",
    "RiskManager",
    "Rule",
    "SignalStrategy",
    "SimulationBroker",
    "Strategy",
    "StrategyNotRunningError",
    "TimestampBatch",
    "TradeloopError",
    "UnknownContextError",
    "UnknownSignalError",
    "VolumeShareSlippage",
    "WalkForwardResult",
    "sweep",
    "walk_forward",
]


def test_public_api_names_are_pinned_and_sorted() -> None:
    assert tradeloop.__all__ == EXPECTED == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(tradeloop, name) is not None


def test_data_subpackage_exports_the_seed_names() -> None:
    for name in (
        "HistoricalFeed",
        "HistoricalDataFeed",
        "ParquetDataFeed",
        "Context",
        "PrecomputedFeatureProvider",
        "CallableFeatureProvider",
    ):
        assert name in tradeloop.data.__all__


def test_every_error_derives_from_the_root() -> None:
    from tradeloop import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TradeloopError)
