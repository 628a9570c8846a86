"""The older spellings of the design documents (``ml4t.backtest``): they keep working, and
new code (and every example) uses the current names instead.

| older spelling                                   | current name                              |
|--------------------------------------------------|-------------------------------------------|
| ``BacktestEngine(data_feed=, context_data=,``    | ``Engine(feed=, context=, initial_cash=)`` |
| ``initial_capital=)``                            |                                           |
| ``HistoricalDataFeed(df, signals=[...])``        | ``HistoricalFeed(df, signal_columns=[...])`` |
| ``ParquetDataFeed(path, asset_id, signal_columns)`` | ``HistoricalFeed(path, asset_id=...)``  |
| ``on_market_data(event[, context])``             | ``on_market_event(event, context)``       |
| ``event.data.signals``                           | ``event.signals``                         |
| ``tradeloop.execution``, ``tradeloop.strategies`` | ``tradeloop.broker``, ``tradeloop.strategy`` |

The callback and attribute spellings are honoured where events are made and dispatched
(``events.MarketEvent.data``, ``runtime.dispatch``); the module paths are two one-line modules.
The classes live here. ``tradeloop.BacktestEngine`` and friends still resolve (lazily), but
are not in ``tradeloop.__all__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeloop.broker.simulation import SimulationBroker
from tradeloop.data.feed import HistoricalFeed
from tradeloop.engine import Engine
from tradeloop.strategy.base import Strategy

__all__ = ["BacktestEngine", "HistoricalDataFeed", "ParquetDataFeed"]


class BacktestEngine(Engine):
    """The older spelling: ``BacktestEngine(data_feed=, strategy=, context_data=,
    initial_capital=)``."""

    def __init__(
        self,
        data_feed: Any = None,
        strategy: Strategy | None = None,
        broker: SimulationBroker | None = None,
        *,
        context_data: Any = None,
        initial_capital: float | None = None,
        **options: Any,
    ) -> None:
        if initial_capital is not None:
            options["initial_cash"] = initial_capital
        if context_data is not None:
            options["context"] = context_data
        super().__init__(data_feed, strategy, broker, **options)


class ParquetDataFeed(HistoricalFeed):
    """A feed over a parquet file (the older spelling): ``ParquetDataFeed(path, asset_id, ...)``."""

    def __init__(
        self,
        path: str | Path,
        asset_id: str | None = None,
        signal_columns: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(Path(path), signal_columns, asset_id=asset_id, **options)


HistoricalDataFeed = HistoricalFeed
