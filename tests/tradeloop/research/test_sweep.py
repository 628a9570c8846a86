"""sweep(): one row per combination, equal to running each combination through Engine.

The reference for every table is a plain ``Engine(...).run()`` per combination in this
process; the pool must match it value for value, read the data once per worker process, and
lose nothing when a worker process is killed.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.tradeloop.research.factories import (
    BARS,
    GRID,
    VIX,
    KillOnce,
    LoadProbe,
    SharpeNamed,
    Threshold,
    chatty,
    kill_always,
    risk_template,
    threshold,
)
from tradeloop import Context, Engine, HistoricalFeed, sweep
from tradeloop.errors import ConfigError, WorkerLostError
from tradeloop.setup import Setup


def engine_table(**options: object) -> pl.DataFrame:
    """The reference: each combination of GRID run by Engine here, in grid order."""
    rows = []
    for entry in GRID["entry"]:
        for exit_ in GRID["exit"]:
            result = Engine(
                feed=HistoricalFeed(BARS),
                strategy=Threshold(entry, exit_),
                progress=False,
                **options,  # type: ignore[arg-type]
            ).run()
            rows.append({"entry": entry, "exit": exit_, **result.metrics})
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    return engine_table(initial_cash=50_000.0, commission=0.001, context=Context(VIX))


@pytest.fixture(scope="module")
def bars_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bars") / "bars.parquet"
    BARS.write_parquet(path)
    return path


def test_sweep_local_pool_equals_one_engine_run_per_combination(
    bars_path: Path, reference: pl.DataFrame, tmp_path: Path
) -> None:
    probe = LoadProbe(tmp_path)
    table = sweep(
        probe,
        GRID,
        bars_path,
        context=VIX,
        max_workers=2,
        progress=False,
        initial_cash=50_000.0,
        commission=0.001,
    )
    assert_frame_equal(table, reference, check_exact=True)
    assert table["commission"].min() > 0  # the engine options reached every run
    loads = probe.loads_by_pid()
    assert sum(len(counts) for counts in loads.values()) == len(reference)
    assert len(loads) <= 2
    # fresh processes: each read the bars exactly once, before its first run
    assert all(counts == [1] * len(counts) for counts in loads.values())


def test_sweep_frame_data_and_function_factory_inline_equal_the_reference(
    reference: pl.DataFrame,
) -> None:
    table = sweep(
        threshold,
        GRID,
        BARS,
        context=VIX,
        executor="inline",
        progress=False,
        initial_cash=50_000.0,
        commission=0.001,
    )
    assert_frame_equal(table, reference, check_exact=True)


def test_sweep_pool_worker_killed_mid_sweep_reruns_lost_runs(
    bars_path: Path, reference: pl.DataFrame, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    table = sweep(
        KillOnce(marker, {"entry": 0.65, "exit": 0.4}),
        GRID,
        bars_path,
        context=VIX,
        max_workers=2,
        progress=False,
        initial_cash=50_000.0,
        commission=0.001,
    )
    assert marker.exists()  # the pool really lost a worker
    assert_frame_equal(table, reference, check_exact=True)


def test_sweep_pool_worker_output_is_flushed_before_its_fast_exit(
    bars_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # workers skip the interpreter's teardown when the pool shuts down (os._exit): what a
    # run printed must still reach the terminal, one line per run
    sweep(chatty, GRID, bars_path, max_workers=2, progress=False)
    printed = [line for line in capfd.readouterr().out.splitlines() if "chatty run" in line]
    assert len(printed) == len(GRID["entry"]) * len(GRID["exit"])


def test_sweep_pool_worker_killed_every_time_raises_worker_lost_error(bars_path: Path) -> None:
    with pytest.raises(WorkerLostError, match=r"died 3 times.*executor='inline'"):
        sweep(kill_always, {"entry": [0.6]}, bars_path, max_workers=1, progress=False)


def test_sweep_strategy_error_in_a_worker_propagates_with_its_parameters(
    bars_path: Path,
) -> None:
    with pytest.raises(TypeError) as caught:
        sweep(
            Threshold, {"entry": ["high"], "exit": [0.4]}, bars_path, max_workers=1, progress=False
        )
    assert "parameters {'entry': 'high', 'exit': 0.4}" in "".join(caught.value.__notes__)


def test_sweep_lambda_factory_raises_config_error_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"cannot be sent to worker processes.*Fix: define it"):
        sweep(lambda **p: Threshold(**p), GRID, BARS, executor="inline")


def test_sweep_partial_of_a_module_level_function_is_accepted(reference: pl.DataFrame) -> None:
    table = sweep(
        functools.partial(threshold, exit=0.4),
        {"entry": GRID["entry"]},
        BARS,
        context=VIX,
        executor="inline",
        progress=False,
        initial_cash=50_000.0,
        commission=0.001,
    )
    expected = reference.filter(pl.col("exit") == 0.4).drop("exit")
    assert_frame_equal(table, expected, check_exact=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"brokerage": 1.0}, r"does not pass \['brokerage'\].*tradeloop.Setup"),
        ({"executor": "ray://x"}, "dask://host:port"),
        ({"executor": 42}, "use None or 'local'"),
        ({"max_workers": 0}, "at least 1"),
    ],
)
def test_sweep_bad_options_raise_config_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sweep(Threshold, GRID, BARS, progress=False, **options)  # type: ignore[arg-type]


def test_sweep_progress_bar_only_when_asked_or_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    grid = {"entry": [0.6], "exit": [0.4]}
    sweep(Threshold, grid, BARS, executor="inline")  # stderr is captured: not a terminal
    assert capsys.readouterr().err == ""
    sweep(Threshold, grid, BARS, executor="inline", progress=True)
    assert "sweep" in capsys.readouterr().err


def test_import_tradeloop_leaves_dask_unimported() -> None:
    code = "import sys, tradeloop; print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sweep_parameter_named_like_a_metric_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\['sharpe'\] share their names with metrics"):
        sweep(SharpeNamed, {"sharpe": [1.0]}, BARS, executor="inline", progress=False)


@pytest.mark.parametrize("executor", ["inline", "local"])
@pytest.mark.parametrize("form", ["template", "factory", "setup"])
def test_sweep_with_a_risk_manager_equals_plain_engine_runs(executor: str, form: str) -> None:
    """Each row equals a plain Engine run of its combination with a fresh RiskManager: the
    template is copied per run (its exits and positions never leak between runs)."""
    rows = []
    exits = 0
    for entry in GRID["entry"]:
        for exit_ in GRID["exit"]:
            result = Engine(
                feed=HistoricalFeed(BARS),
                strategy=Threshold(entry, exit_),
                risk=risk_template(),
                context=Context(VIX),
                progress=False,
            ).run()
            exits += sum(result.config["risk_exits"].values())
            rows.append({"entry": entry, "exit": exit_, **result.metrics})
    assert exits > 0  # the stop and the target fire: the rows really depend on the risk
    expected = pl.DataFrame(rows)
    template = risk_template()
    if form == "setup":
        table = sweep(Setup(Threshold, risk=template, context=VIX), GRID, BARS, executor=executor)
    else:
        risk = template if form == "template" else risk_template
        table = sweep(Threshold, GRID, BARS, risk=risk, context=VIX, executor=executor)
    assert_frame_equal(table, expected)
    assert not template.bound  # the template itself never ran
    assert template.exits == {}
