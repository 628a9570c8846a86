"""Parameter sweeps: one backtest per grid combination, run in parallel, as one polars table.

``sweep(MyStrategy, {"entry": [0.6, 0.7], "exit": [0.4]}, "bars.parquet")`` builds
``MyStrategy(entry=..., exit=...)`` for each combination, runs each over the same bars with the
same engine options, and returns one row per combination (grid order): the parameters, then
every metric of ``BacktestResult``.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tradeloop.data.context import Context
from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import ConfigError
from tradeloop.plugins import SetupSpec
from tradeloop.research.executors import open_runner
from tradeloop.research.grid import Grid, expand_grid
from tradeloop.research.worker import ENGINE_OPTIONS, Job, Outcome, SweepSetup
from tradeloop.setup import Setup
from tradeloop.strategy.base import Strategy

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["equity_curves", "make_setup", "results_table", "sweep"]


def sweep(
    strategy: Setup | SetupSpec | Callable[..., Strategy],
    grid: Grid,
    data: str | Path | HistoricalFeed | Any,
    *,
    context: Any = None,
    risk: Any = None,
    features: Any = None,
    executor: str | Client | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
    keep_equity: bool = False,
    **engine_options: Any,
) -> pl.DataFrame:
    """Backtest every combination in ``grid`` of the strategy's parameters.

    ``strategy``: a ``Setup`` (strategy, params, risk, features, context, costs: the grid's
    values override its params), or a strategy class / factory (``factory(**params)``).
    ``grid``: a dict of lists (every combination) or a list of dicts (as given).
    ``data``: a .parquet/.csv path (each worker reads it once: on a cluster the path must be
    readable from every machine), a ``HistoricalFeed``, or a polars/pandas frame (sent to each
    worker once). ``context``, ``risk``, ``features``: as ``Engine`` takes them (over the
    setup's); a ``RiskManager`` is copied fresh for every run, so each run equals a plain
    ``Engine`` run of its combination. ``executor``: ``None``/``"local"`` a process pool on
    this machine (``max_workers`` processes, default one per CPU); ``"dask://host:port"`` or a
    ``distributed.Client`` a Dask cluster; ``"inline"`` this process, one run after another.
    ``engine_options``: ``initial_cash``, ``commission``, ``slippage``, ``fill_timing``,
    ``allow_short``, ``fractional``, ``cash_shortfall``, ``calendar``, ``periods_per_year``,
    as ``Engine`` takes them.
    What reaches the workers must pickle: a class or a module-level function, not a lambda
    (a setup in a ``file.py`` goes as a ``SetupSpec``). A progress bar shows on a terminal
    unless ``progress=False``. ``keep_equity=True`` adds an ``equity_curve`` column (each
    run's ``timestamp, equity`` as a list of structs) that stays with its row through sorting
    and filtering; the sweep report (``tradeloop.results.sweep_page``) draws it on demand.
    """
    combinations = expand_grid(grid)
    setup = make_setup(
        strategy, data, engine_options, context=context, risk=risk, features=features
    )
    jobs = [Job(params, keep_equity=keep_equity) for params in combinations]
    with open_runner(executor, setup, max_workers=max_workers, progress=progress) as runner:
        outcomes = runner.map(jobs, "sweep")
    table = results_table(combinations, outcomes)
    if keep_equity:
        table = table.with_columns(equity_curves(outcomes))
    return table


def equity_curves(outcomes: Sequence[Outcome]) -> pl.Series:
    """Each outcome's equity curve as one ``List(Struct(timestamp, equity))`` value."""
    curves = [
        outcome.equity_curve.with_columns(run=pl.lit(i, pl.Int64))
        for i, outcome in enumerate(outcomes)
        if outcome.equity_curve is not None
    ]
    grouped = (
        pl.concat(curves)
        .group_by("run", maintain_order=True)
        .agg(pl.struct("timestamp", "equity").alias("equity_curve"))
    )
    return grouped["equity_curve"]


def make_setup(
    strategy: Setup | SetupSpec | Callable[..., Strategy],
    data: Any,
    engine_options: Mapping[str, Any],
    *,
    context: Any = None,
    risk: Any = None,
    features: Any = None,
) -> SweepSetup:
    """Check what a sweep ships to its workers and bundle it."""
    unknown = sorted(set(engine_options) - ENGINE_OPTIONS)
    if unknown:
        raise ConfigError(
            f"sweep() does not pass {unknown} to the engine; it passes "
            f"{sorted(ENGINE_OPTIONS)} (and context=, risk=, features=). Other settings belong "
            "in the strategy's parameters or a tradeloop.Setup"
        )
    changes = {
        k: v
        for k, v in {**engine_options, "risk": risk, "features": features}.items()
        if v is not None
    }
    if context is not None:
        changes["context"] = context if isinstance(context, Context) else Context(context)
    if isinstance(strategy, SetupSpec):
        if risk is not None or features is not None:
            raise ConfigError("a SetupSpec names its risk and features: pass them to it")
        source: Setup | SetupSpec = SetupSpec(
            strategy.strategy,
            strategy.risk,
            strategy.features,
            {**strategy.changes, **changes},
        )
    elif isinstance(strategy, Setup):
        source = strategy.replace(**changes) if changes else strategy
    elif callable(strategy):
        source = Setup(strategy, **changes)
    else:
        raise ConfigError(
            f"sweep() takes a Setup, or a Strategy class or a function returning a Strategy, "
            f"got {strategy!r}"
        )
    if isinstance(source, Setup):
        _require_importable(source)
    feed = data if isinstance(data, HistoricalFeed) else HistoricalFeed(data)
    if isinstance(data, str | Path):
        feed = HistoricalFeed(Path(data).resolve())  # workers may run in another directory
    return SweepSetup(feed=feed, setup=source)


def results_table(
    combinations: Sequence[Mapping[str, Any]], outcomes: Sequence[Outcome]
) -> pl.DataFrame:
    """One row per run: its parameters, then its metrics."""
    clash = sorted(set(combinations[0]) & set(outcomes[0].metrics)) if outcomes else []
    if clash:
        raise ConfigError(
            f"grid parameters {clash} share their names with metrics; rename them in the "
            "strategy factory (the table needs one column per name)"
        )
    rows = [
        {**params, **outcome.metrics}
        for params, outcome in zip(combinations, outcomes, strict=True)
    ]
    return pl.DataFrame(rows, infer_schema_length=None)


def _require_importable(setup: Setup) -> None:
    factory = setup.strategy
    name = getattr(factory, "__qualname__", repr(factory))
    fix = (
        "Fix: define it at the top level of a .py module (a Strategy subclass, or a def that "
        "returns one; functools.partial of such a function works too), not as a lambda, a "
        "nested function or in a notebook cell"
    )
    try:
        pickle.dumps(setup)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ConfigError(
            f"the sweep's setup ({name}) cannot be sent to worker processes ({err}). {fix}"
        ) from err
    module = sys.modules.get(getattr(factory, "__module__", "") or "")
    if module is not None and module.__name__ == "__main__" and not hasattr(module, "__file__"):
        # pickles by reference to __main__, which a spawned worker process does not have
        raise ConfigError(f"strategy_factory {name} lives in an interactive session. {fix}")
