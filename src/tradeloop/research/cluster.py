"""The Dask executor: a sweep's jobs as tasks on a ``distributed`` cluster.

The setup is scattered to every worker once (``broadcast=True``); a worker that dies takes
its running tasks with it and the scheduler reruns them elsewhere (up to its
``distributed.scheduler.allowed-failures``). dask is imported only when this runs, so
``import tradeloop`` stays fast and the ``cluster`` extra stays optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tradeloop.errors import ConfigError, WorkerLostError
from tradeloop.research.progress import progress_bar
from tradeloop.research.worker import Job, Outcome, SweepSetup, run_job

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskRunner", "dask_client"]


class DaskRunner:
    """Jobs as tasks on a Dask cluster; the setup is scattered to every worker once."""

    def __init__(
        self, client: Client, setup: SweepSetup, progress: bool, *, close_client: bool = False
    ) -> None:
        self.client = client
        self.progress = progress
        self._close_client = close_client
        self._setup = client.scatter(setup, broadcast=True, hash=False)

    def map(self, jobs: Sequence[Job], description: str) -> list[Outcome]:
        from distributed import as_completed as completed
        from distributed.scheduler import KilledWorker

        futures = [self.client.submit(run_job, self._setup, job, pure=False) for job in jobs]
        position = {future.key: i for i, future in enumerate(futures)}
        outcomes: dict[int, Outcome] = {}
        try:
            with progress_bar(len(jobs), description, self.progress) as bar:
                for future in completed(futures, loop=self.client.loop):
                    i = position[future.key]
                    try:
                        outcomes[i] = future.result()
                    except KilledWorker as err:
                        raise WorkerLostError(
                            f"Dask gave up on the run with parameters {dict(jobs[i].params)}: "
                            f"{err}. Each worker running it died (the scheduler's "
                            "distributed.scheduler.allowed-failures limit was reached)"
                        ) from err
                    bar.update()
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return [outcomes[i] for i in range(len(jobs))]

    def close(self) -> None:
        self._setup.release()
        if self._close_client:
            self.client.close()


def dask_client(executor: Any) -> tuple[Client, bool]:
    """The client ``executor`` names, and whether it was opened here (and so closed here)."""
    try:
        from distributed import Client
    except ImportError as err:
        raise ConfigError(
            f"executor={executor!r} needs Dask: pip install 'tradeloop[cluster]'"
        ) from err
    if isinstance(executor, Client):
        return executor, False
    if not isinstance(executor, str) or "://" not in executor:
        raise ConfigError(
            f"executor={executor!r}: use None or 'local' (a process pool on this machine), "
            "'inline' (this process), 'dask://host:port' (a Dask scheduler) or a "
            "distributed.Client"
        )
    scheme, _, address = executor.partition("://")
    if scheme not in {"dask", "tcp", "tls"}:
        raise ConfigError(f"executor={executor!r}: a Dask scheduler address is dask://host:port")
    try:
        client = Client(
            f"{'tcp' if scheme == 'dask' else scheme}://{address}",
            timeout=30,
            set_as_default=False,
        )
    except OSError as err:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {executor}: {err}. Fix: start one "
            "(dask scheduler; dask worker tcp://host:8786 on each machine) or check the address"
        ) from err
    return client, True
