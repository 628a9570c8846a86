"""Engine: wire a feed, a strategy and a broker into a replay backtest, and build the result.

``Engine(feed, strategy).run()`` is the whole API. ``BacktestEngine(data_feed=...,
context_data=..., initial_capital=...)`` is the older spelling of the same thing.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from tradeloop.broker.costs import CommissionModel, SlippageModel
from tradeloop.broker.sessions import periods_per_year
from tradeloop.broker.simulation import SimulationBroker
from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context
from tradeloop.data.features import CallableFeatureProvider, PrecomputedFeatureProvider
from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import ConfigError
from tradeloop.results.benchmark import equal_weight_buy_and_hold
from tradeloop.results.equity import EquityRecord, equity_record
from tradeloop.results.frames import fills_frame, orders_frame, positions_frame
from tradeloop.results.metrics import compute_metrics, daily_returns
from tradeloop.results.result import BacktestResult
from tradeloop.results.trades import round_trips
from tradeloop.risk.manager import RiskManager
from tradeloop.runtime.compiled import CompileFallbackWarning, compile_problem, run_compiled
from tradeloop.runtime.dispatch import Dispatcher
from tradeloop.runtime.replay import replay
from tradeloop.strategy.base import Strategy, attach
from tradeloop.strategy.declarative import SignalStrategy

__all__ = ["BacktestEngine", "Engine"]


class Engine:
    """A replay backtest of one strategy over one or more feeds, or the same strategy on a
    live stream.

    Give ``feed`` (one feed, a frame/path that becomes one, or an already validated
    ``BarTable``) or ``feeds`` (asset id → feed).
    Broker settings (``initial_cash``, ``commission``, ``slippage``, ``fill_timing``,
    ``allow_short``, ``fractional``, ``cash_shortfall``, ``calendar``) build a
    ``SimulationBroker``; or pass ``broker=``. Metrics annualise by ``periods_per_year``; left
    out, by the broker's calendar (its sessions a year over the run: ~252 for ``"XNYS"``,
    365 for ``"24/7"``), else 252.
    ``context`` is market-wide data (``Context`` or anything ``Context`` accepts);
    ``features`` a feature provider whose per-asset features become signals and whose
    market-wide features become context; ``risk`` a ``RiskManager`` whose exits run before
    the strategy at each timestamp.

    ``feed`` may also be a stream (anything with ``messages()``: ``ReplayFeed``,
    ``WebSocketFeed``, ``SupervisedFeed``) with ``broker=PaperBroker(...)``: the run goes
    through the live runtime instead of the replay, bar by bar as the stream delivers, and
    returns the same ``BacktestResult`` (context then comes from the stream)::

        Engine(WebSocketFeed("ws://127.0.0.1:8765"), MyStrategy(), PaperBroker(100_000)).run()
    """

    def __init__(
        self,
        feed: Any = None,
        strategy: Strategy | None = None,
        broker: SimulationBroker | None = None,
        *,
        feeds: Mapping[str, Any] | None = None,
        context: Any = None,
        features: PrecomputedFeatureProvider | CallableFeatureProvider | None = None,
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
        self.stream = feed if hasattr(feed, "messages") else None
        # bars already validated into a table (a sweep worker reuses one for many runs)
        self.table = feed if isinstance(feed, BarTable) else None
        if self.stream is not None and context is not None:
            raise ConfigError(
                "a stream brings its own context messages; context= is for replayed data"
            )
        if strategy is None:
            raise ConfigError("no strategy: pass strategy=MyStrategy()")
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                f"strategy must subclass tradeloop.Strategy, got {type(strategy).__name__}"
            )
        options: dict[str, Any] = {
            "initial_cash": initial_cash,
            "commission": commission,
            "slippage": slippage,
            "fill_timing": fill_timing,
            "allow_short": allow_short,
            "fractional": fractional,
            "cash_shortfall": cash_shortfall,
            "calendar": calendar,
        }
        given = {k: v for k, v in options.items() if v is not None}
        if broker is not None and given:
            raise ConfigError(
                f"{sorted(given)} configure the broker, but a broker was passed too; set them "
                "on SimulationBroker(...) instead"
            )
        self.broker = (
            broker
            if broker is not None
            else SimulationBroker(float(given.pop("initial_cash", 100_000.0)), **given)
        )
        self.feeds: list[HistoricalFeed] = (
            []
            if self.stream is not None or self.table is not None
            else [_as_feed(feed)]
            if feeds is None
            else [_as_feed(f).with_asset_id(str(asset)) for asset, f in feeds.items()]
        )
        self.strategy = strategy
        self.context = context if isinstance(context, Context) else Context(context)
        self.features = features
        self.risk = risk
        self.periods_per_year = periods_per_year
        self.progress = progress
        self._ran = False

    def load(self) -> BarTable:
        """Read and validate every feed (joining precomputed features) into one table."""
        if self.table is not None:
            return self.table
        frames = [feed.frame() for feed in self.feeds]
        if isinstance(self.features, PrecomputedFeatureProvider):
            frames = [self.features.join_signals(frame) for frame in frames]
        return BarTable.from_frames(frames)

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
        callable_features = None
        if isinstance(self.features, PrecomputedFeatureProvider):
            context = context.merged(self.features.market_context())
        elif isinstance(self.features, CallableFeatureProvider):
            if self.features.is_async:
                raise ConfigError(
                    "async feature functions run in paper and live runs (LiveRuntime); a replay "
                    "backtest calls features in line and needs plain functions"
                )
            callable_features = self.features
        strategy, broker = self.strategy, self.broker
        compiled = isinstance(strategy, SignalStrategy) and strategy.compile
        if compiled:
            assert isinstance(strategy, SignalStrategy)
            extras = (["a RiskManager"] if self.risk is not None else []) + (
                ["callable features"] if callable_features is not None else []
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
            self.risk.bind(broker, self.features)
        dispatcher = Dispatcher(strategy, broker, callable_features, self.risk)
        attach(strategy, broker)
        try:
            if compiled:
                assert isinstance(strategy, SignalStrategy)
                kernel_seconds = run_compiled(strategy, broker, table, context)
                return self._finish(table, started, loaded, {"kernel_seconds": kernel_seconds})
            strategy.on_start()
            replay(
                table,
                dispatcher,
                context,
                market_features=callable_features,
                progress=self.progress,
            )
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
        started = time.perf_counter()
        runtime = LiveRuntime(
            self.stream,
            self.strategy,
            self.broker,
            risk=self.risk,
            features=self.features,
            record=True,
        )
        await runtime.run()
        table = BarTable.from_frame(runtime.recorded_frame())
        return self._finish(table, started, started)

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
        extra: dict[str, float] | None = None,
    ) -> BacktestResult:
        broker = self.broker
        finished = time.perf_counter()
        charges = [(c.ts_ns, c.amount) for c in broker.book.charges]
        record = equity_record(table, broker.fills, broker.initial_cash, charges)
        live_equity, _ = broker.valuation()
        if abs(record.equity[-1] - live_equity) > 1e-6 * max(1.0, abs(live_equity)):
            raise AssertionError(  # an internal invariant, never the user's fault
                f"tradeloop bug: equity rebuilt from fills {record.equity[-1]!r} != broker "
                f"accounting {live_equity!r}; please report it with the data that caused it"
            )
        return self._result(
            table,
            record,
            {
                "load_seconds": loaded - started,
                "run_seconds": finished - loaded,
                "compiled": extra is not None,
                **(extra or {}),
            },
        )

    def _result(
        self, table: BarTable, record: EquityRecord, timings: dict[str, float]
    ) -> BacktestResult:
        broker = self.broker
        fills = fills_frame(broker.fills)
        trades = round_trips(broker.fills)
        periods = self.periods_per_year
        if periods is None and len(record.ts_ns):
            periods = periods_per_year(broker.calendar, int(record.ts_ns[0]), int(record.ts_ns[-1]))
        periods = 252.0 if periods is None else periods
        metrics = compute_metrics(
            ts_ns=record.ts_ns,
            equity=record.equity,
            gross_exposure=record.gross_exposure,
            positions=record.positions,
            initial_cash=broker.initial_cash,
            trades=trades,
            traded_notional=float(sum(f.notional for f in broker.fills)),
            commission=broker.portfolio.commission_paid,
            periods_per_year=periods,
        )
        positions = positions_frame(broker)
        metrics["realized_pnl"] = broker.portfolio.realized_pnl
        metrics["unrealized_pnl"] = float(positions["unrealized_pnl"].sum())
        equity = np.maximum.accumulate(np.concatenate(([broker.initial_cash], record.equity)))[1:]
        curve = pl.DataFrame(
            {
                "timestamp": pl.Series(record.ts_ns)
                .cast(pl.Datetime("ns", "UTC"))
                .cast(pl.Datetime("us", "UTC")),
                "equity": record.equity,
                "cash": record.cash,
                "positions_value": record.equity - record.cash,
                "gross_exposure": record.gross_exposure,
                "drawdown": record.equity / equity - 1.0,
                "n_positions": record.positions,
            }
        )
        config = {
            "strategy": type(self.strategy).__name__,
            "n_bars": table.n_rows,
            "n_assets": len(table.asset_ids),
            "signals": list(table.signals),
            "context": list(self.context.names),
            "initial_cash": broker.initial_cash,
            "commission": repr(broker.commission_model),
            "slippage": repr(broker.slippage_model),
            "fill_timing": broker.fill_timing,
            "allow_short": broker.allow_short,
            "fractional": broker.fractional,
            "cash_shortfall": broker.cash_shortfall,
            "margin": repr(broker.book.margin) if broker.book.margin is not None else None,
            "margin_calls": len(broker.margin_calls),
            "borrow_fees": sum(c.amount for c in broker.book.charges),
            "calendar": broker.calendar,
            "periods_per_year": periods,
            **self._risk_config(),
            **timings,
        }
        return BacktestResult(
            metrics=metrics,
            equity_curve=curve,
            fills=fills,
            orders=orders_frame(broker),
            trades=trades,
            daily_returns=daily_returns(record.ts_ns, record.equity, broker.initial_cash),
            final_positions={a: p.qty for a, p in broker.portfolio.positions.items()},
            positions=positions,
            config=config,
            benchmark_curve=pl.DataFrame(
                {
                    "timestamp": curve["timestamp"],
                    "equity": equal_weight_buy_and_hold(table, broker.initial_cash),
                }
            ),
        )

    def _risk_config(self) -> dict[str, Any]:
        risk = self.risk
        if risk is None:
            return {}
        halted = risk.halted_at
        return {
            "risk_rules": [getattr(rule, "name", type(rule).__name__) for rule in risk.rules],
            "risk_guards": [guard.name for guard in risk.guards],
            "risk_exits": dict(risk.exits),
            "guard_interventions": dict(risk.guard_messages),
            "halted_at": None if halted is None else str(halted),
        }


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


def _as_feed(feed: Any) -> HistoricalFeed:
    return feed if isinstance(feed, HistoricalFeed) else HistoricalFeed(feed)
