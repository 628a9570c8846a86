"""tradeloop: one strategy class for replay backtests, paper trading and live trading.

from tradeloop import Engine, Strategy
from tradeloop.data import HistoricalFeed, Context
"""

from typing import TYPE_CHECKING, Any

from tradeloop.broker import (
    BpsSlippage,
    FixedCommission,
    PercentCommission,
    PerShareCommission,
    SimulationBroker,
    VolumeShareSlippage,
)
from tradeloop.broker.margin import Margin, MarginCall
from tradeloop.broker.orders import OrderRequest
from tradeloop.broker.paper import PaperBroker
from tradeloop.data import (
    CallableFeatureProvider,
    Context,
    HistoricalFeed,
    PrecomputedFeatureProvider,
)
from tradeloop.engine import Engine
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
from tradeloop.risk.gate import GateLimits, PreTradeGate
from tradeloop.setup import Setup
from tradeloop.strategy import FixedSizer, PercentSizer, Rule, SignalStrategy, Strategy
from tradeloop.strategy.declarative import CompileFallbackWarning
from tradeloop.strategy.requests import order_request
from tradeloop.stream.replay import ReplayFeed

if TYPE_CHECKING:
    from tradeloop.broker.live import LiveBroker
    from tradeloop.runtime.live import LiveRuntime
    from tradeloop.stream.supervisor import SupervisedFeed
    from tradeloop.stream.websocket import WebSocketFeed

__version__ = "0.1.0"

# the network side loads on first use: a backtest never imports websockets or aiohttp
_LAZY = {
    # the design documents' older spellings (tradeloop.compat): they work, out of __all__
    "BacktestEngine": "tradeloop.compat",
    "HistoricalDataFeed": "tradeloop.compat",
    "ParquetDataFeed": "tradeloop.compat",
    "LiveBroker": "tradeloop.broker.live",
    "LiveRuntime": "tradeloop.runtime.live",
    "SupervisedFeed": "tradeloop.stream.supervisor",
    "WebSocketFeed": "tradeloop.stream.websocket",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tradeloop' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
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
