"""Where a sweep's jobs run: in this process, a local process pool, or a Dask cluster.

Every runner ships the ``SweepSetup`` (bars, context, factory) to each worker once and then
sends only small ``Job``s; ``map`` returns the outcomes in job order whatever order they
finish in. Lost workers are retried: Dask reschedules a dead worker's jobs itself (up to the
scheduler's ``allowed-failures``); the local pool is rebuilt and only the unfinished jobs run
again. The Dask runner is in ``cluster.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from tqdm import tqdm

from tradeloop.errors import ConfigError, WorkerLostError
from tradeloop.research.progress import progress_bar
from tradeloop.research.worker import (
    Job,
    Outcome,
    SweepSetup,
    install_pickled_setup,
    run_installed_job,
    run_job,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["InlineRunner", "PoolRunner", "Runner", "open_runner"]

# A lost pool is rebuilt this many times per map() before giving up: a job that kills its
# process every time (a segfault, memory) must end with an error, not loop forever.
POOL_RESTARTS = 2


class Runner(Protocol):
    def map(self, jobs: Sequence[Job], description: str) -> list[Outcome]:
        """Run ``jobs``; return their outcomes in the same order."""
        ...


@contextmanager
def open_runner(
    executor: str | Client | None,
    setup: SweepSetup,
    *,
    max_workers: int | None = None,
    progress: bool | None = None,
) -> Iterator[Runner]:
    """The runner ``executor`` names (see ``sweep``), closed (pool, scattered data) on exit."""
    show = sys.stderr.isatty() if progress is None else progress
    if max_workers is not None and max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
    if executor is None or executor == "local":
        pool = PoolRunner(setup, max_workers, show)
        try:
            yield pool
        finally:
            pool.close()
        return
    if executor == "inline":
        yield InlineRunner(setup, show)
        return
    if max_workers is not None:
        raise ConfigError("max_workers= sizes the local pool; a Dask cluster sizes itself")
    from tradeloop.research.cluster import DaskRunner, dask_client

    client, owned = dask_client(executor)
    dask = DaskRunner(client, setup, show, close_client=owned)
    try:
        yield dask
    finally:
        dask.close()


class InlineRunner:
    """Every job in this process, one after another (for debugging: breakpoints work)."""

    def __init__(self, setup: SweepSetup, progress: bool) -> None:
        self.setup = setup
        self.progress = progress

    def map(self, jobs: Sequence[Job], description: str) -> list[Outcome]:
        with progress_bar(len(jobs), description, self.progress) as bar:
            outcomes = []
            for job in jobs:
                outcomes.append(run_job(self.setup, job))
                bar.update()
        return outcomes


class PoolRunner:
    """A local ``ProcessPoolExecutor`` (spawned processes: fork is unsafe with polars' and
    numba's threads), each process started with the pickled setup."""

    def __init__(self, setup: SweepSetup, max_workers: int | None, progress: bool) -> None:
        self.blob = pickle.dumps(setup)
        self.max_workers = max_workers or _usable_cpus()
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None

    def map(self, jobs: Sequence[Job], description: str) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        restarts = 0
        with progress_bar(len(jobs), description, self.progress) as bar:
            while len(outcomes) < len(jobs):
                unfinished = [i for i in range(len(jobs)) if i not in outcomes]
                pool = self._open(len(unfinished))
                futures = {pool.submit(run_installed_job, jobs[i]): i for i in unfinished}
                if not self._collect(futures, outcomes, bar):
                    continue
                self._discard()
                restarts += 1
                lost = [i for i in unfinished if i not in outcomes]
                if restarts > POOL_RESTARTS:
                    raise WorkerLostError(
                        f"sweep worker processes died {restarts} times; {len(lost)} runs never "
                        f"finished (the first: {dict(jobs[lost[0]].params)}). A run that kills "
                        "its process every time (a crash in native code, running out of "
                        "memory) cannot finish: run it with executor='inline' to see why"
                    )
                self._log_restart(len(lost), restarts)
        return [outcomes[i] for i in range(len(jobs))]

    def close(self) -> None:
        """Shut the pool down (its processes exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @staticmethod
    def _log_restart(rerunning: int, restart: int) -> None:
        import structlog  # imported here: it is rare, and `import tradeloop` stays lean

        structlog.get_logger().warning("sweep_worker_lost", rerunning=rerunning, restart=restart)

    def _collect(
        self, futures: dict[Future[Outcome], int], outcomes: dict[int, Outcome], bar: tqdm
    ) -> bool:
        """Record every finished job; True if the pool broke (its lost jobs are left out)."""
        broken = False
        for future in as_completed(futures):
            error = future.exception()
            if error is None:
                outcomes[futures[future]] = future.result()
                bar.update()
            elif isinstance(error, BrokenProcessPool):
                broken = True
            else:
                self._discard()
                raise error
        return broken

    def _open(self, n_jobs: int) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=min(self.max_workers, n_jobs),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=install_pickled_setup,
                initargs=(self.blob,),
            )
        return self._pool

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
