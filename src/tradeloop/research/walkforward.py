"""Walk-forward: pick parameters on a rolling train window, trade them on the window after it.

Windows roll over the data's distinct timestamps. Window ``k`` trains on the ``train``
timestamps starting at ``k × step`` and tests on the ``test`` timestamps right after them;
``step`` defaults to ``test``, so test windows tile the data without overlap. Lengths are
counts of timestamps (``int``) or calendar spans (``timedelta``, measured from the first
timestamp). The last test window may be cut short by the end of the data.

Stitching: each test run starts flat with the previous test window's ending equity as its
cash (the first with ``initial_cash``), as if every position were sold at the last close
before the next window, free of costs; the stitched equity therefore compounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import ConfigError
from tradeloop.plugins import SetupSpec
from tradeloop.research.executors import Runner, open_runner
from tradeloop.research.grid import Grid, expand_grid
from tradeloop.research.sweep import make_setup, results_table
from tradeloop.research.worker import Job, Outcome
from tradeloop.results.display import METRIC_LABELS
from tradeloop.setup import Setup
from tradeloop.strategy.base import Strategy

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "OUT_OF_SAMPLE_METRICS",
    "WalkForwardResult",
    "Window",
    "rolling_windows",
    "walk_forward",
]

Length = int | timedelta
_DEFAULT_CASH = 100_000.0  # Engine's default
# each window's test run, beside the picking metric (and test_return, from the equities)
OUT_OF_SAMPLE_METRICS = ("sharpe", "max_drawdown", "n_trades", "win_rate", "commission")


@dataclass(frozen=True, slots=True)
class Window:
    """One train/test split; bounds are inclusive bar timestamps (UTC nanoseconds)."""

    index: int
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


@dataclass(frozen=True)
class WalkForwardResult:
    """``windows``: per window its bounds, the chosen parameters, the train score and the test
    outcome (``test_<metric>`` for the picking metric and ``OUT_OF_SAMPLE_METRICS``,
    ``test_return``, start and end equity); ``equity_curve``: the stitched out-of-sample
    equity (``timestamp, equity, window``); ``train``: every train run (``window``,
    parameters, metrics)."""

    windows: pl.DataFrame
    equity_curve: pl.DataFrame
    train: pl.DataFrame
    metric: str

    @property
    def total_return(self) -> float:
        """Out-of-sample return over every test window, compounded."""
        first = float(self.windows["start_equity"][0])
        return float(self.windows["end_equity"][-1]) / first - 1.0

    def _repr_html_(self) -> str:
        """The notebook view: the out-of-sample return and the windows as a table."""
        from tradeloop.results.notebook import table_html

        caption = (
            f"walk-forward by {self.metric}: {self.windows.height} windows, out-of-sample "
            f"total return {self.total_return:.2%}"
        )
        return table_html(self.windows, caption=caption)


def rolling_windows(
    timestamps_ns: npt.NDArray[np.int64], train: Length, test: Length, step: Length | None = None
) -> list[Window]:
    """The walk-forward windows over sorted distinct ``timestamps_ns`` (see module doc)."""
    step = test if step is None else step
    kinds = {type(length) for length in (train, test, step)}
    if kinds == {int}:
        return _windows_by_count(timestamps_ns, int(train), int(test), int(step))  # type: ignore[arg-type]
    if kinds == {timedelta}:
        return _windows_by_span(timestamps_ns, train, test, step)  # type: ignore[arg-type]
    raise ConfigError(
        "train, test and step must all be counts of timestamps (int) or all be timedelta, "
        f"got {type(train).__name__}, {type(test).__name__}, {type(step).__name__}"
    )


def walk_forward(
    strategy: Setup | SetupSpec | Callable[..., Strategy],
    grid: Grid,
    data: str | Path | HistoricalFeed | Any,
    *,
    train: Length,
    test: Length,
    step: Length | None = None,
    metric: str = "sharpe",
    maximize: bool = True,
    context: Any = None,
    risk: Any = None,
    features: Any = None,
    executor: str | Client | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
    **engine_options: Any,
) -> WalkForwardResult:
    """Sweep ``grid`` on each train window, keep the best by ``metric``, run it on the test
    window after it, and stitch the test runs. Arguments not named here are ``sweep``'s.

    The best combination has the highest ``metric`` (lowest with ``maximize=False``); NaN
    scores never win, ties go to the earlier combination in grid order, and a window where
    every score is NaN takes the first combination.
    """
    combinations = expand_grid(grid)
    setup = make_setup(
        strategy, data, engine_options, context=context, risk=risk, features=features
    )
    timestamps = setup.feed.frame()["ts_ns"].unique().sort().to_numpy()
    windows = rolling_windows(timestamps, train, test, step)
    if not windows:
        raise ConfigError(
            f"no walk-forward window fits: the data has {len(timestamps)} timestamps and "
            f"train={train!r} needs at least one more for a test window. Fix: shorten train"
        )
    if metric not in METRIC_LABELS:  # before the train sweeps, not after them
        raise ConfigError(f"no metric {metric!r}; metrics are: {', '.join(METRIC_LABELS)}")
    source = setup.setup.load() if isinstance(setup.setup, SetupSpec) else setup.setup
    cash = float(source.initial_cash if source.initial_cash is not None else _DEFAULT_CASH)
    with open_runner(executor, setup, max_workers=max_workers, progress=progress) as runner:
        train_jobs = [
            Job(params, w.train_start_ns, w.train_end_ns)
            for w in windows
            for params in combinations
        ]
        trained = runner.map(train_jobs, "walk-forward train")
        n = len(combinations)
        chosen = [
            k * n + _best(trained[k * n : (k + 1) * n], metric, maximize)
            for k in range(len(windows))
        ]
        tested = _run_tests(runner, windows, [train_jobs[i].params for i in chosen], cash)
    train_table = results_table([job.params for job in train_jobs], trained)
    window_column = pl.Series("window", [w.index for w in windows for _ in combinations])
    return WalkForwardResult(
        windows=_windows_table(windows, train_table[chosen], tested, metric, cash),
        equity_curve=pl.concat(
            [
                t.equity_curve.with_columns(window=pl.lit(w.index))
                for w, t in zip(windows, tested, strict=True)
                if t.equity_curve is not None
            ]
        ),
        train=train_table.insert_column(0, window_column),
        metric=metric,
    )


def _run_tests(
    runner: Runner, windows: Sequence[Window], picks: Sequence[Mapping[str, Any]], cash: float
) -> list[Outcome]:
    """Each window's pick over its test window, each starting with the last one's equity."""
    tested: list[Outcome] = []
    for window, params in zip(windows, picks, strict=True):
        job = Job(params, window.test_start_ns, window.test_end_ns, cash, keep_equity=True)
        tested.append(runner.map([job], f"walk-forward test {window.index}")[0])
        cash = tested[-1].metrics["final_value"]
    return tested


def _windows_by_count(ts: npt.NDArray[np.int64], train: int, test: int, step: int) -> list[Window]:
    if min(train, test, step) < 1:
        raise ConfigError(f"train, test and step must be >= 1, got {train}, {test}, {step}")
    _no_overlap(test, step)
    windows: list[Window] = []
    for k, first in enumerate(range(0, len(ts) - train, step)):
        split = first + train  # the first test timestamp
        last = min(split + test, len(ts)) - 1
        windows.append(Window(k, int(ts[first]), int(ts[split - 1]), int(ts[split]), int(ts[last])))
    return windows


def _windows_by_span(
    ts: npt.NDArray[np.int64], train: timedelta, test: timedelta, step: timedelta
) -> list[Window]:
    if min(train, test, step) <= timedelta(0):
        raise ConfigError(f"train, test and step must be positive, got {train}, {test}, {step}")
    _no_overlap(test, step)
    spans = [_ns(train), _ns(test), _ns(step)]
    windows: list[Window] = []
    anchor = int(ts[0])
    while anchor + spans[0] <= ts[-1]:
        a, b, c = np.searchsorted(ts, [anchor, anchor + spans[0], anchor + spans[0] + spans[1]])
        if a < b < c:  # a gap in the data may leave a window empty: skip it
            windows.append(
                Window(len(windows), int(ts[a]), int(ts[b - 1]), int(ts[b]), int(ts[c - 1]))
            )
        anchor += spans[2]
    return windows


def _no_overlap(test: Length, step: Length) -> None:
    if step < test:  # type: ignore[operator]
        raise ConfigError(
            f"step={step!r} is shorter than test={test!r}: test windows would overlap and "
            "their equity could not be stitched. Fix: step >= test"
        )


def _ns(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000_000 + span.microseconds * 1_000


def _best(outcomes: Sequence[Outcome], metric: str, maximize: bool) -> int:
    sign = 1.0 if maximize else -1.0
    scores = [sign * outcome.metrics[metric] for outcome in outcomes]
    finite = [i for i, score in enumerate(scores) if not math.isnan(score)]
    return max(finite, key=lambda i: (scores[i], -i)) if finite else 0


def _windows_table(
    windows: Sequence[Window],
    picked: pl.DataFrame,
    tested: Sequence[Outcome],
    metric: str,
    cash: float,
) -> pl.DataFrame:
    """Per window: bounds, the chosen parameters, train score, test outcome."""
    ends = [t.metrics["final_value"] for t in tested]
    params = [name for name in picked.columns if name not in tested[0].metrics]
    return pl.DataFrame(
        {
            "window": [w.index for w in windows],
            **{
                name: _datetimes([getattr(w, f"{name}_ns") for w in windows])
                for name in ("train_start", "train_end", "test_start", "test_end")
            },
            **{name: picked[name] for name in params},
            f"train_{metric}": picked[metric],
            **{
                f"test_{name}": [t.metrics[name] for t in tested]
                for name in dict.fromkeys((metric, *OUT_OF_SAMPLE_METRICS))
            },
            "start_equity": [cash, *ends[:-1]],
            "end_equity": ends,
        }
    ).with_columns(test_return=pl.col("end_equity") / pl.col("start_equity") - 1.0)


def _datetimes(ts_ns: list[int]) -> pl.Series:
    return (
        pl.Series(ts_ns, dtype=pl.Int64)
        .cast(pl.Datetime("ns", "UTC"))
        .cast(pl.Datetime("us", "UTC"))
    )
