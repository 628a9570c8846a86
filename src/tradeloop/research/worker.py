"""What runs inside a sweep worker: one backtest per job, over data loaded once per process.

A ``SweepSetup`` (bars, context, strategy factory, engine options) reaches each worker process
once: through the process pool's initializer, or scattered to every Dask worker. The worker
reads and validates the bars the first time a job needs them and keeps the result for every
later job of the same setup (``load_count`` says how often that happened in this process).
"""

from __future__ import annotations

import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context
from tradeloop.data.feed import HistoricalFeed
from tradeloop.engine import Engine
from tradeloop.errors import ConfigError
from tradeloop.strategy.base import Strategy

__all__ = [
    "ENGINE_OPTIONS",
    "Job",
    "Outcome",
    "SweepSetup",
    "install_pickled_setup",
    "load_count",
    "run_installed_job",
    "run_job",
]

# Broker and metric settings a sweep passes to every Engine. A RiskManager or a broker object
# holds a run's state, so one shared by every run would leak state between them.
ENGINE_OPTIONS = frozenset(
    {
        "initial_cash",
        "commission",
        "slippage",
        "fill_timing",
        "allow_short",
        "fractional",
        "cash_shortfall",
        "calendar",
        "periods_per_year",
    }
)
_CACHED_SETUPS = 2  # a long-lived Dask worker serves many sweeps: keep only the latest
_CACHED_TABLES = 4  # walk-forward windows arrive in order: a few slices suffice


@dataclass(frozen=True, slots=True)
class SweepSetup:
    """Everything every job of one sweep shares; shipped to each worker once."""

    feed: HistoricalFeed
    context: Context | None
    factory: Callable[..., Strategy]
    engine_options: Mapping[str, Any]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class Job:
    """One backtest: the factory's parameters, optionally a time slice and a starting cash.

    ``start_ns``/``end_ns`` are inclusive bounds on bar timestamps (UTC nanoseconds).
    """

    params: Mapping[str, Any]
    start_ns: int | None = None
    end_ns: int | None = None
    initial_cash: float | None = None
    keep_equity: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a job sends back: its metrics, and its equity curve when the job asked for it."""

    metrics: dict[str, float]
    equity_curve: pl.DataFrame | None = None


@dataclass(slots=True)
class _Loaded:
    frame: pl.DataFrame  # validated bars in normal form (see data/validation.py)
    tables: OrderedDict[tuple[int | None, int | None], BarTable]


_lock = threading.Lock()  # a Dask worker may run jobs on several threads
_loaded: OrderedDict[str, _Loaded] = OrderedDict()
_loads = 0
_installed: bytes | None = None
_installed_setup: SweepSetup | None = None


def load_count() -> int:
    """How many times this process has read a sweep's bars (tests prove it is once each)."""
    return _loads


def run_job(setup: SweepSetup, job: Job) -> Outcome:
    """Run one backtest of ``setup.factory(**job.params)`` and return its metrics."""
    table = _table(setup, job.start_ns, job.end_ns)
    options = dict(setup.engine_options)
    if job.initial_cash is not None:
        options["initial_cash"] = job.initial_cash
    try:
        strategy = setup.factory(**job.params)
        result = Engine(
            table, strategy=strategy, context=setup.context, progress=False, **options
        ).run()
    except Exception as err:
        err.add_note(f"in the sweep run with parameters {dict(job.params)}")
        raise
    equity = result.equity_curve.select("timestamp", "equity") if job.keep_equity else None
    return Outcome(dict(result.metrics), equity)


def install_pickled_setup(blob: bytes) -> None:
    """Process-pool initializer: keep the pickled setup; it is unpickled by the first job, so a
    setup that cannot be unpickled here fails that job with its error, not the whole pool."""
    global _installed, _installed_setup
    _installed, _installed_setup = blob, None


def run_installed_job(job: Job) -> Outcome:
    """Process-pool task: ``run_job`` with the setup this process was started with."""
    global _installed_setup
    if _installed_setup is None:
        if _installed is None:
            raise ConfigError("tradeloop bug: a pool worker started without a sweep setup")
        try:
            _installed_setup = pickle.loads(_installed)
        except (AttributeError, ImportError) as err:
            raise ConfigError(
                f"a worker process cannot import the sweep's strategy factory or data: {err}. "
                "Fix: define the factory in a module the workers can import (a .py file, not "
                "a notebook cell or an interactive session)"
            ) from err
    return run_job(_installed_setup, job)


def _table(setup: SweepSetup, start_ns: int | None, end_ns: int | None) -> BarTable:
    global _loads
    with _lock:
        loaded = _loaded.get(setup.key)
        if loaded is None:
            loaded = _Loaded(setup.feed.frame(), OrderedDict())
            _loads += 1
            _loaded[setup.key] = loaded
            while len(_loaded) > _CACHED_SETUPS:
                _loaded.popitem(last=False)
        _loaded.move_to_end(setup.key)
        span = (start_ns, end_ns)
        table = loaded.tables.get(span)
        if table is None:
            table = BarTable.from_frame(_slice(loaded.frame, start_ns, end_ns))
            loaded.tables[span] = table
            while len(loaded.tables) > _CACHED_TABLES:
                loaded.tables.popitem(last=False)
        return table


def _slice(frame: pl.DataFrame, start_ns: int | None, end_ns: int | None) -> pl.DataFrame:
    if start_ns is None and end_ns is None:
        return frame
    ts = pl.col("ts_ns")
    keep = pl.lit(True)
    if start_ns is not None:
        keep = keep & (ts >= start_ns)
    if end_ns is not None:
        keep = keep & (ts <= end_ns)
    return frame.filter(keep)
