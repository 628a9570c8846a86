"""Sweeps on a real Dask cluster: two worker processes on 127.0.0.1, started by the test.

The reference is the local process pool on the same grid and data: the tables must be
identical, value for value. Workers must read the data once, and a worker killed in the
middle of a sweep must cost nothing but time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from distributed import Client, LocalCluster
from polars.testing import assert_frame_equal

from tests.tradeloop.research.factories import BARS, GRID, VIX, KillOnce, LoadProbe, Threshold
from tradeloop import sweep, walk_forward


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # the scheduler's HTTP endpoints (health, metrics) on a free loopback port, not :8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def bars_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bars") / "bars.parquet"
    BARS.write_parquet(path)
    return path


@pytest.fixture(scope="module")
def pool_table(bars_path: Path) -> pl.DataFrame:
    return sweep(
        Threshold, GRID, bars_path, context=VIX, max_workers=2, commission=0.001, progress=False
    )


def test_sweep_dask_cluster_equals_local_pool_and_reads_data_once_per_worker(
    client: Client, bars_path: Path, pool_table: pl.DataFrame, tmp_path: Path
) -> None:
    address = client.scheduler.address.replace("tcp://", "dask://")
    probe = LoadProbe(tmp_path)
    table = sweep(
        probe, GRID, bars_path, context=VIX, executor=address, commission=0.001, progress=False
    )
    assert_frame_equal(table, pool_table, check_exact=True)
    loads = probe.loads_by_pid()
    assert sum(len(counts) for counts in loads.values()) == len(table)
    assert 1 <= len(loads) <= 2  # only the cluster's two worker processes ran jobs
    # a worker reads the bars once, before its first job: every later job sees the same count
    assert all(len(set(counts)) == 1 for counts in loads.values())
    assert max(len(counts) for counts in loads.values()) >= 2  # so some worker reused them


def test_sweep_dask_worker_killed_mid_sweep_is_retried_and_table_complete(
    client: Client, bars_path: Path, pool_table: pl.DataFrame, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    victim = {"entry": 0.65, "exit": 0.45}
    table = sweep(
        KillOnce(marker, victim),
        GRID,
        bars_path,
        context=VIX,
        executor=client,
        commission=0.001,
        progress=False,
    )
    assert marker.exists()  # a worker really died running the victim
    assert_frame_equal(table, pool_table, check_exact=True)


def test_walk_forward_on_dask_equals_walk_forward_in_process(client: Client) -> None:
    options = {"train": 60, "test": 30, "context": VIX, "progress": False, "commission": 0.001}
    on_dask = walk_forward(Threshold, GRID, BARS, executor=client, **options)  # type: ignore[arg-type]
    inline = walk_forward(Threshold, GRID, BARS, executor="inline", **options)  # type: ignore[arg-type]
    assert_frame_equal(on_dask.windows, inline.windows, check_exact=True)
    assert_frame_equal(on_dask.equity_curve, inline.equity_curve, check_exact=True)
    assert_frame_equal(on_dask.train, inline.train, check_exact=True)
