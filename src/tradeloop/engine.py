"""Engine: wire a feed, a strategy and a broker into a replay backtest, and build the result.

``Engine(feed, strategy).run()`` is the whole API (``tradeloop.compat.BacktestEngine`` is the
design documents' older spelling of it).
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Mapping
from typing import Any

import polars as pl

from tradeloop.broker.base import RuntimeBroker
from tradeloop.broker.costs import CommissionModel, SlippageModel
from tradeloop.broker.simulation import SimulationBroker
from tradeloop.data.bars import BarTable, TimestampColumns
from tradeloop.data.context import Context, context_names
from tradeloop.data.features import (
    CallableFeatureProvider,
    FeatureJoin,
    FeatureProvider,
    PrecomputedFeatureProvider,
)
from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import ConfigError
from tradeloop.results.build import RunFacts, build_result
from tradeloop.results.result import BacktestResult
from tradeloop.risk.manager import RiskManager
from tradeloop.runtime.compiled import CompileFallbackWarning, compile_problem, run_compiled
from tradeloop.runtime.dispatch import Dispatcher
from tradeloop.runtime.preflight import check_callbacks, check_context, check_signals
from tradeloop.runtime.replay import replay
from tradeloop.setup import Setup
from tradeloop.strategy.base import Strategy, attach
from tradeloop.strategy.declarative import SignalStrategy

__all__ = ["Engine"]


class Engine:
    """A replay backtest of one strategy over one or more feeds, or the same strategy on a
    live stream.

    Give ``feed`` (one feed, a frame/path that becomes one, or an already validated
    ``BarTable``) or ``feeds`` (asset id → feed), and ``strategy``: a ``Strategy``, or a
    ``Setup`` that brings the strategy with its parameters, risk manager, features, context
    and costs (any of them given here too overrides the setup's).
    Broker settings (``initial_cash``, ``commission``, ``slippage``, ``fill_timing``,
    ``allow_short``, ``fractional``, ``cash_shortfall``, ``calendar``) build a
    ``SimulationBroker``; or pass ``broker=``. Metrics annualise by ``periods_per_year``; left
    out, by the broker's calendar (its sessions a year over the run: ~252 for ``"XNYS"``,
    365 for ``"24/7"``), else 252.
    ``context`` is market-wide data (``Context`` or anything ``Context`` accepts);
    ``features`` a feature provider whose per-asset features become signals and whose
    market-wide features become context (a ``RiskManager(provider)`` given no other provider
    lends its own); ``risk`` a ``RiskManager`` whose exits run before the strategy at each
    timestamp.

    ``feed`` may also be a stream (anything with ``messages()``: ``ReplayFeed``,
    ``WebSocketFeed``, ``SupervisedFeed``) with ``broker=PaperBroker(...)``: the run goes
    through the live runtime instead of the replay, bar by bar as the stream delivers, and
    returns the same ``BacktestResult``. Context values then come from the stream; ``context=``
    names the series the strategy expects (a list of names, or a ``Context`` whose names are
    taken; a ``ReplayFeed`` declares its own)::

        Engine(WebSocketFeed("ws://127.0.0.1:8765"), MyStrategy(), PaperBroker(100_000)).run()
    """

    def __init__(
        self,
        feed: Any = None,
        strategy: Strategy | Setup | None = None,
        broker: RuntimeBroker | None = None,
        *,
        feeds: Mapping[str, Any] | None = None,
        context: Any = None,
        features: FeatureProvider | None = None,
        risk: RiskManager | None = None,
        initial_cash: float | None = None,
        commission: CommissionModel | float | None = None,
        slippage: SlippageModel | float | None = None,
        fill_timing: str | None = None,
        allow_short: bool | None = None,
        fractional: bool | None = None,
        cash_shortfall: str | None = None,
        calendar: str | Mapping[str, str] | None = None,
        periods_per_year: float | None = None,
        progress: bool | None = None,
    ) -> None:
        if isinstance(feed, Mapping) and feeds is None and not isinstance(feed, pl.DataFrame):
            feed, feeds = None, feed
        if (feed is None) == (feeds is None):
            raise ConfigError("give exactly one of feed= (one feed) or feeds= ({asset_id: feed})")
        if feeds is not None and not feeds:
            raise ConfigError(
                "feeds={} names no asset: there is nothing to replay. Fix: give "
                "feeds={'SPY': spy_frame, ...}, or feed= one frame of every asset"
            )
        self.stream = feed if hasattr(feed, "messages") else None
        # bars already validated into a table (a sweep worker reuses one for many runs)
        self.table = feed if isinstance(feed, BarTable) else None
        setup = strategy if isinstance(strategy, Setup) else None
        if setup is not None:
            strategy = setup.build()
            risk = risk if risk is not None else setup.fresh_risk()
            features = features if features is not None else setup.feature_provider()
            context = context if context is not None else setup.context
            if periods_per_year is None:
                periods_per_year = setup.periods_per_year
        if strategy is None:
            raise ConfigError("no strategy: pass strategy=MyStrategy() or a Setup")
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                f"strategy must subclass tradeloop.Strategy, got {type(strategy).__name__}"
            )
        given = {
            k: v
            for k, v in {
                "initial_cash": initial_cash,
                "commission": commission,
                "slippage": slippage,
                "fill_timing": fill_timing,
                "allow_short": allow_short,
                "fractional": fractional,
                "cash_shortfall": cash_shortfall,
                "calendar": calendar,
            }.items()
            if v is not None
        }
        if broker is not None and given:
            raise ConfigError(
                f"{sorted(given)} configure the broker, but a broker was passed too; set them "
                "on SimulationBroker(...) instead"
            )
        options = {**(setup.broker_options() if setup is not None else {}), **given}
        self.broker: RuntimeBroker = (
            broker
            if broker is not None
            else SimulationBroker(float(options.pop("initial_cash", 100_000.0)), **options)
        )
        self.feeds: list[HistoricalFeed] = (
            []
            if self.stream is not None or self.table is not None
            else [_as_feed(feed)]
            if feeds is None
            else [_as_feed(f).with_asset_id(str(asset)) for asset, f in feeds.items()]
        )
        self.strategy = strategy
        self.risk = risk
        self.features = _one_provider(features, risk)
        if self.stream is not None:
            self.context = Context()
            self.context_names = _stream_context_names(self.stream, context)
        else:
            self.context = context if isinstance(context, Context) else Context(context)
            self.context_names = self.context.names
        # None: by the broker's calendar (results.build), else 252
        self.periods_per_year = None if periods_per_year is None else float(periods_per_year)
        self.progress = progress
        self._ran = False

    def load(self) -> BarTable:
        """Read and validate every feed (joining precomputed features) into one table."""
        if self.table is not None:
            table = self.table
            if isinstance(self.features, PrecomputedFeatureProvider):
                raise ConfigError(
                    "a BarTable is already joined: join precomputed features before building it"
                )
            return table
        frames = [feed.frame() for feed in self.feeds]
        if isinstance(self.features, PrecomputedFeatureProvider):
            frames = [self.features.join_signals(frame) for frame in frames]
        return BarTable.from_frames(frames, consume=True)  # the validated frames are ours

    def run(self) -> BacktestResult:
        """Replay every bar through the strategy (or run the stream) and return the result."""
        if self.stream is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.run_async())
            raise ConfigError(
                "Engine.run() was called inside a running event loop; there, use "
                "`await engine.run_async()`"
            )
        self._start()
        started = time.perf_counter()
        table = self.load()
        loaded = time.perf_counter()
        context = self.context
        check_callbacks(self.strategy)
        check_signals(table.signals)
        if table.n_timestamps:
            check_context(context, int(table.unique_ts_ns[0]), int(table.unique_ts_ns[-1]))
        join = None
        if isinstance(self.features, PrecomputedFeatureProvider):
            context = context.merged(self.features.market_context())
        elif self.features is not None:
            if isinstance(self.features, CallableFeatureProvider) and self.features.is_async:
                raise ConfigError(
                    "async feature functions run in paper and live runs (LiveRuntime); a replay "
                    "backtest calls features in line and needs plain functions"
                )
            join = FeatureJoin(self.features)
        strategy, broker = self.strategy, self.broker
        compiled = isinstance(strategy, SignalStrategy) and strategy.compile
        if compiled:
            assert isinstance(strategy, SignalStrategy)
            assert isinstance(broker, SimulationBroker)
            extras = (["a RiskManager"] if self.risk is not None else []) + (
                ["callable features"] if join is not None else []
            )
            problem = compile_problem(strategy, broker, table, context, extras)
            if problem:
                compiled = False
                warnings.warn(
                    f"{type(strategy).__name__} runs on the event path (same results, slower): "
                    f"{problem}. Pass compile=False to silence this.",
                    CompileFallbackWarning,
                    stacklevel=2,
                )
        if self.risk is not None:
            self.risk.bind(broker)
        dispatcher = Dispatcher(strategy, broker, self.risk)
        attach(strategy, broker)
        try:
            if compiled:
                assert isinstance(strategy, SignalStrategy)
                assert isinstance(broker, SimulationBroker)
                kernel_seconds = run_compiled(strategy, broker, table, context)
                return self._finish(table, started, loaded, {"kernel_seconds": kernel_seconds})
            strategy.on_start()
            replay(table, dispatcher, context, features=join, progress=self.progress)
            strategy.on_end()
        finally:
            strategy.broker = None
        return self._finish(table, started, loaded)

    async def run_async(self) -> BacktestResult:
        """Run a stream through the live runtime (see the class docstring)."""
        from tradeloop.runtime.live import LiveRuntime

        if self.stream is None:
            raise ConfigError("run_async() runs a stream; a replay runs with run()")
        self._start()
        check_callbacks(self.strategy)
        started = time.perf_counter()
        handled: list[TimestampColumns] = []
        runtime = LiveRuntime(
            self.stream,
            self.strategy,
            self.broker,
            risk=self.risk,
            features=self.features,
            context_names=self.context_names or None,
            record=handled.append,
        )
        await runtime.run()
        table = BarTable.from_timestamps(handled)
        return self._finish(table, started, started, {"runtime": runtime.counters()})

    def _start(self) -> None:
        if self._ran:
            raise ConfigError(
                "an Engine runs once (its broker holds the run's state); build a new one"
            )
        self._ran = True

    def _finish(
        self,
        table: BarTable,
        started: float,
        loaded: float,
        extra: dict[str, Any] | None = None,
    ) -> BacktestResult:
        finished = time.perf_counter()
        facts = RunFacts(
            strategy=type(self.strategy).__name__,
            context=self.context_names,
            periods_per_year=self.periods_per_year,
            risk=self.risk,
            extra={
                "load_seconds": loaded - started,
                "run_seconds": finished - loaded,
                "compiled": extra is not None and "kernel_seconds" in extra,
                **(extra or {}),
            },
        )
        return build_result(table, self.broker, facts)


def _one_provider(features: FeatureProvider | None, risk: RiskManager | None) -> Any:
    """The run's one feature provider: the one given, or the risk manager's."""
    lent = risk.feature_provider if risk is not None else None
    if features is not None and lent is not None and lent is not features:
        raise ConfigError(
            "features= and RiskManager(feature_provider=...) are two providers; a strategy and "
            "its risk rules read one view: give the same provider to both (or only one)"
        )
    return features if features is not None else lent


def _stream_context_names(stream: Any, context: Any) -> tuple[str, ...]:
    """The context a stream run expects: given names, a Context's names, or the feed's own."""
    if context is None:
        return tuple(getattr(stream, "context_names", ()) or ())
    return context_names(context)


def _as_feed(feed: Any) -> HistoricalFeed:
    return feed if isinstance(feed, HistoricalFeed) else HistoricalFeed(feed)
