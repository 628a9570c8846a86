"""tradeloop: one strategy class for replay backtests, paper trading and live trading.

from tradeloop import Engine, Strategy
from tradeloop.data import HistoricalFeed, Context
"""

from tradeloop.broker import (
    BpsSlippage,
    FixedCommission,
    PercentCommission,
    PerShareCommission,
    SimulationBroker,
    VolumeShareSlippage,
)
from tradeloop.data import (
    CallableFeatureProvider,
    Context,
    HistoricalDataFeed,
    HistoricalFeed,
    ParquetDataFeed,
    PrecomputedFeatureProvider,
)
from tradeloop.engine import BacktestEngine, Engine
from tradeloop.errors import (
    ConfigError,
    DataError,
    OrderError,
    StrategyNotRunningError,
    TradeloopError,
    UnknownContextError,
    UnknownSignalError,
)
from tradeloop.events import Fill, MarketEvent, TimestampBatch
from tradeloop.research import WalkForwardResult, sweep, walk_forward
from tradeloop.results import BacktestResult
from tradeloop.risk import RiskManager
from tradeloop.strategy import FixedSizer, PercentSizer, Rule, SignalStrategy, Strategy
from tradeloop.strategy.declarative import CompileFallbackWarning

__version__ = "0.1.0"

__all__ = [
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
