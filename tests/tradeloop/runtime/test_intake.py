"""``runtime.intake`` and the runtime's batch path when a decoder hands over one list of asset
ids frame after frame (``stream.codec`` does, while a stream's universe repeats): what is
remembered about that list never lets in, or orders, anything it would not otherwise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.conftest import Messages, day
from tradeloop import PaperBroker, Strategy
from tradeloop.clock import utc_ns
from tradeloop.data.validation import OHLCV, keeps_bar_rules, rule_masks
from tradeloop.events import BarBatchMessage, Message, TimestampBatch
from tradeloop.runtime.intake import Intake, IntakeLimits, _keeps
from tradeloop.runtime.live import LiveRuntime


def test_intake_lets_a_list_in_again_but_still_refuses_a_new_asset() -> None:
    intake = Intake(IntakeLimits(universe=frozenset("ABC")), structlog.get_logger())
    usual = ["A", "B", "C"]
    with capture_logs() as logs:
        assert intake.kept(usual, 1) is None
        assert intake.kept(usual, 2) is None
        assert intake.kept(["A", "X", "C"], 3) == [0, 2]
        assert intake.kept(usual, 4) is None
        assert intake.kept(["X", "A"], 5) == [1]
    assert intake.unknown_assets == 2
    assert [(e["event"], e["asset"]) for e in logs] == [("unknown_asset_dropped", "X")] * 2


class Recorder(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list[str], list[float]]] = []

    def on_timestamp_batch(self, batch: TimestampBatch, context: Any) -> None:
        self.seen.append((batch.asset_ids, batch.close.tolist()))


async def test_runtime_orders_one_unsorted_list_by_name_at_every_timestamp() -> None:
    shared = ["C", "A", "B"]  # one list object, as the decoder hands it over
    messages: list[Message] = []
    for d in range(3):
        close = np.array([30.0, 10.0, 20.0]) + d  # C, A, B
        messages.append(
            BarBatchMessage(utc_ns(day(d)), shared, close, close, close, close, close * 0 + 1)
        )
    close = np.array([11.0, 99.0])
    messages.append(BarBatchMessage(utc_ns(day(3)), ["B", "A"], close, close, close, close, close))
    strategy = Recorder()
    runtime = LiveRuntime(Messages(messages), strategy, PaperBroker(1_000.0))
    await runtime.run()
    assert strategy.seen == [
        (["A", "B", "C"], [10.0, 20.0, 30.0]),
        (["A", "B", "C"], [11.0, 21.0, 31.0]),
        (["A", "B", "C"], [12.0, 22.0, 32.0]),
        (["A", "B"], [99.0, 11.0]),
    ]
    assert shared == ["C", "A", "B"]  # never sorted in place


_PRICE = st.sampled_from([0.0, -1.0, 1.0, 2.0, 3.0, float("nan"), float("inf"), -float("inf")])


@given(st.lists(st.tuples(_PRICE, _PRICE, _PRICE, _PRICE, _PRICE), min_size=1, max_size=12))
def test_compiled_bar_check_agrees_with_the_rules_on_any_columns(
    bars: list[tuple[float, ...]],
) -> None:
    # the stream's compiled loop and the history's numpy form agree with the rules one by
    # one (BAR_RULES' masks), read-only views included
    columns = [np.array(column) for column in zip(*bars, strict=True)]
    expected = not any(mask.any() for mask in rule_masks(*columns))
    views = [column.copy() for column in columns]
    for view in views:
        view.flags.writeable = False
    assert _keeps(columns) is expected
    assert _keeps(views) is expected
    assert keeps_bar_rules(*columns) is expected
    whole = [np.floor(np.nan_to_num(c, posinf=9, neginf=-9)).astype(np.int64) for c in columns]
    assert _keeps(whole) is keeps_bar_rules(*whole)  # integer columns: the numpy form


@pytest.mark.parametrize(
    "bar",
    [
        (10.0, 12.0, 9.0, 11.0, 100.0),  # good
        (10.0, 12.0, 0.0, 11.0, 100.0),  # low not positive
        (10.0, math.inf, 9.0, 11.0, 100.0),  # high not finite
        (8.0, 12.0, 9.0, 11.0, 100.0),  # open below the low
        (10.0, 12.0, 9.0, 8.5, 100.0),  # close below the low
        (13.0, 12.0, 9.0, 11.0, 100.0),  # open above the high
        (10.0, 12.0, 9.0, 12.5, 100.0),  # close above the high
        (10.0, 12.0, 9.0, 11.0, -1.0),  # negative volume
        (10.0, 12.0, 9.0, 11.0, math.nan),  # no volume: kept
        (math.nan, 12.0, 9.0, 11.0, 100.0),  # no open
        (10.0, 12.0, 9.0, math.nan, 100.0),  # no close
    ],
)
def test_compiled_bar_check_breaks_on_each_rule_alone(bar: tuple[float, ...]) -> None:
    # one bad bar among good ones, each rule broken on its own (the random test rarely
    # breaks only one): the compiled loop agrees with the rules' masks
    good = (10.0, 12.0, 9.0, 11.0, 100.0)
    columns = [np.array(column) for column in zip(good, bar, good, strict=True)]
    expected = not any(mask.any() for mask in rule_masks(*columns))
    assert _keeps(columns) is expected
    assert keeps_bar_rules(*columns) is expected


def test_intake_refuses_a_broken_bar_with_the_compiled_check_and_names_its_rule() -> None:
    intake = Intake(IntakeLimits(), structlog.get_logger())
    arrays = {name: np.array([10.0, 10.0]) for name in OHLCV}
    arrays["low"] = np.array([9.0, 11.0])  # B's low above its open and close
    arrays["volume"] = np.array([5.0, 5.0])
    ids, kept = intake.valid(1, ["A", "B"], arrays)
    assert ids == ["A"]
    assert kept["low"].tolist() == [9.0]
    assert sum(intake.invalid_bars.values()) == 1
