"""The public surface is small and pinned: a change here is a deliberate API change."""

from __future__ import annotations

import tradeloop
import tradeloop.data

EXPECTED = [
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
    "GateLimits",
    "HistoricalFeed",
    "LiveBroker",
    "LiveRuntime",
    "Margin",
    "MarginCall",
    "MarketEvent",
    "OrderError",
    "OrderRequest",
    "PaperBroker",
    "PerShareCommission",
    "PercentCommission",
    "PercentSizer",
    "PreTradeGate",
    "PrecomputedFeatureProvider",
    "ReplayFeed",
    "RiskManager",
    "Rule",
    "Setup",
    "SignalStrategy",
    "SimulationBroker",
    "Strategy",
    "StrategyNotRunningError",
    "SupervisedFeed",
    "TimestampBatch",
    "TradeloopError",
    "UnknownContextError",
    "UnknownSignalError",
    "VolumeShareSlippage",
    "WalkForwardResult",
    "WebSocketFeed",
    "order_request",
    "sweep",
    "walk_forward",
]


def test_public_api_names_are_pinned_and_sorted() -> None:
    assert tradeloop.__all__ == EXPECTED == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(tradeloop, name) is not None


def test_data_subpackage_exports_the_seed_names() -> None:
    for name in ("HistoricalFeed", "Context", "PrecomputedFeatureProvider"):
        assert name in tradeloop.data.__all__
    assert "CallableFeatureProvider" in tradeloop.data.__all__


def test_older_spellings_resolve_from_compat_but_are_not_exported() -> None:
    import tradeloop.compat

    for name in tradeloop.compat.__all__:
        assert name not in tradeloop.__all__
        assert getattr(tradeloop, name) is getattr(tradeloop.compat, name)
    assert tradeloop.data.HistoricalDataFeed is tradeloop.HistoricalFeed
    assert tradeloop.data.ParquetDataFeed is tradeloop.compat.ParquetDataFeed


def test_every_error_derives_from_the_root() -> None:
    from tradeloop import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TradeloopError)


def test_a_backtest_import_leaves_the_network_stack_unloaded() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tradeloop; "
        "print(sorted(m for m in ('websockets', 'aiohttp', 'structlog') if m in sys.modules)); "
        "tradeloop.WebSocketFeed; print('websockets' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["[]", "True"]
