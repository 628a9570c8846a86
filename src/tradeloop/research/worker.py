"""What runs inside a sweep worker: one backtest per job, over data loaded once per process.

A ``SweepSetup`` (the bars and the user's ``Setup``: strategy, risk, features, context,
costs) reaches each worker process once: through the process pool's initializer, or
scattered to every Dask worker. The worker reads and validates the bars the first time a job
needs them (joining precomputed features) and keeps the result for every later job of the
same setup (``load_count`` says how often that happened in this process). Each job runs
``Engine(bars, setup with the job's params)``: exactly a plain ``Engine`` run of that
combination, a fresh risk manager included.
"""

from __future__ import annotations

import atexit
import os
import pickle
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tradeloop.data.bars import BarTable
from tradeloop.data.features import PrecomputedFeatureProvider
from tradeloop.data.feed import HistoricalFeed
from tradeloop.engine import Engine
from tradeloop.errors import ConfigError
from tradeloop.plugins import SetupSpec
from tradeloop.setup import BROKER_OPTIONS, Setup

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

# Broker and metric settings a sweep passes to every Engine (a Setup's fields). A broker
# object holds a run's state; a RiskManager is copied fresh for every run by the Setup.
ENGINE_OPTIONS = frozenset({*BROKER_OPTIONS, "periods_per_year"})
_CACHED_SETUPS = 2  # a long-lived Dask worker serves many sweeps: keep only the latest
_CACHED_TABLES = 4  # walk-forward windows arrive in order: a few slices suffice


@dataclass(frozen=True, slots=True)
class SweepSetup:
    """Everything every job of one sweep shares; shipped to each worker once.

    ``setup`` is the user's ``Setup``, or a ``SetupSpec`` naming one in a file (imported in
    the worker: an object defined in a ``file.py`` cannot be pickled by reference)."""

    feed: HistoricalFeed
    setup: Setup | SetupSpec
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
    user = setup.setup.load() if isinstance(setup.setup, SetupSpec) else setup.setup
    table = _table(setup, user, job.start_ns, job.end_ns)
    run_setup = user.replace(params={**user.params, **job.params})
    if job.initial_cash is not None:
        run_setup = run_setup.replace(initial_cash=job.initial_cash)
    try:
        result = Engine(table, run_setup, progress=False).run()
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
    atexit.register(_exit_at_once)


def _exit_at_once() -> None:
    """A pool worker's last step once the pool shuts it down (every result already sent):
    leave without the interpreter's teardown of numba, polars and the bars (0.6 s a process
    here, which ``sweep`` waited for), as a forked process leaves. Registered first, so every
    other exit handler has run by then (and multiprocessing has flushed the streams; what a
    later handler printed is flushed here)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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


def _table(setup: SweepSetup, user: Setup, start_ns: int | None, end_ns: int | None) -> BarTable:
    global _loads
    with _lock:
        loaded = _loaded.get(setup.key)
        if loaded is None:
            frame = setup.feed.frame()
            features = user.feature_provider()
            if isinstance(features, PrecomputedFeatureProvider):
                frame = features.join_signals(frame)  # once, as Engine.load would per run
            loaded = _Loaded(frame, OrderedDict())
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
