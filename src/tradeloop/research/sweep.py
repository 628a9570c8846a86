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
from tradeloop.research.executors import open_runner
from tradeloop.research.grid import Grid, expand_grid
from tradeloop.research.worker import ENGINE_OPTIONS, Job, Outcome, SweepSetup
from tradeloop.strategy.base import Strategy

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["make_setup", "results_table", "sweep"]


def sweep(
    strategy_factory: Callable[..., Strategy],
    grid: Grid,
    data: str | Path | HistoricalFeed | Any,
    *,
    context: Any = None,
    executor: str | Client | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
    **engine_options: Any,
) -> pl.DataFrame:
    """Backtest ``strategy_factory(**params)`` for every combination in ``grid``.

    ``grid``: a dict of lists (every combination) or a list of dicts (as given).
    ``data``: a .parquet/.csv path (each worker reads it once: on a cluster the path must be
    readable from every machine), a ``HistoricalFeed``, or a polars/pandas frame (sent to each
    worker once). ``context``: market-wide series, as ``Engine(context=...)`` takes them.
    ``executor``: ``None``/``"local"`` a process pool on this machine (``max_workers``
    processes, default one per CPU); ``"dask://host:port"`` or a ``distributed.Client``
    a Dask cluster; ``"inline"`` this process, one run after another.
    ``engine_options``: ``initial_cash``, ``commission``, ``slippage``, ``fill_timing``,
    ``allow_short``, ``fractional``, ``cash_shortfall``, ``periods_per_year``, as ``Engine``
    takes them.
    The factory must be picklable (a class or a module-level function), since it is sent to
    the worker processes. A progress bar shows on a terminal unless ``progress=False``.
    """
    combinations = expand_grid(grid)
    setup = make_setup(strategy_factory, data, context, engine_options)
    with open_runner(executor, setup, max_workers=max_workers, progress=progress) as runner:
        outcomes = runner.map([Job(params) for params in combinations], "sweep")
    return results_table(combinations, outcomes)


def make_setup(
    strategy_factory: Callable[..., Strategy],
    data: Any,
    context: Any,
    engine_options: Mapping[str, Any],
) -> SweepSetup:
    """Check what a sweep ships to its workers and bundle it."""
    unknown = sorted(set(engine_options) - ENGINE_OPTIONS)
    if unknown:
        raise ConfigError(
            f"sweep() does not pass {unknown} to the engine; it passes "
            f"{sorted(ENGINE_OPTIONS)}. A risk manager or broker holds one run's state: build "
            "it inside the strategy factory instead"
        )
    if not callable(strategy_factory):
        raise ConfigError(
            f"strategy_factory must be a Strategy class or a function returning a Strategy, "
            f"got {strategy_factory!r}"
        )
    _require_importable(strategy_factory)
    feed = data if isinstance(data, HistoricalFeed) else HistoricalFeed(data)
    if isinstance(data, str | Path):
        feed = HistoricalFeed(Path(data).resolve())  # workers may run in another directory
    return SweepSetup(
        feed=feed,
        context=None if context is None else Context(context),
        factory=strategy_factory,
        engine_options=dict(engine_options),
    )


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


def _require_importable(factory: Callable[..., Any]) -> None:
    name = getattr(factory, "__qualname__", repr(factory))
    fix = (
        "Fix: define it at the top level of a .py module (a Strategy subclass, or a def that "
        "returns one; functools.partial of such a function works too), not as a lambda, a "
        "nested function or in a notebook cell"
    )
    try:
        pickle.dumps(factory)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ConfigError(
            f"strategy_factory {name} cannot be sent to worker processes ({err}). {fix}"
        ) from err
    module = sys.modules.get(getattr(factory, "__module__", "") or "")
    if module is not None and module.__name__ == "__main__" and not hasattr(module, "__file__"):
        # pickles by reference to __main__, which a spawned worker process does not have
        raise ConfigError(f"strategy_factory {name} lives in an interactive session. {fix}")
