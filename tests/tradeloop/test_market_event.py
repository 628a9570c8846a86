"""MarketEvent as a row of shared columns: moving events, snapshots, batch events on read."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.conftest import bars, day
from tradeloop import Engine, MarketEvent, Strategy, TimestampBatch
from tradeloop.errors import UnknownSignalError
from tradeloop.market_event import BatchEvents, SignalView, floats

T0 = 1_700_000_000_000_000_000


def _bar(event: MarketEvent) -> tuple[Any, ...]:
    return (
        event.ts_ns,
        event.asset_id,
        event.open,
        event.high,
        event.low,
        event.close,
        event.volume,
        dict(event.signals),
        event.context,
    )


def _prices(*closes: float) -> tuple[np.ndarray, ...]:
    """open = close - 1, high = close + 2, low = close - 2, volume = 10 x close."""
    close = np.array(closes)
    return close - 1, close + 2, close - 2, close, close * 10


def test_market_event_built_by_hand_reads_back_its_fields() -> None:
    signals = SignalView({"score": [0.25]}, 0)
    event = MarketEvent(None, "X", 1.0, 3.0, 0.5, 2.0, 7.0, signals, {"VIX": 20}, ts_ns=T0)
    assert _bar(event) == (T0, "X", 1.0, 3.0, 0.5, 2.0, 7.0, {"score": 0.25}, {"VIX": 20})
    assert event.data is event
    assert "c=2.0" in repr(event)


def test_batch_events_on_the_same_assets_are_the_same_objects_on_the_next_columns() -> None:
    moving = BatchEvents()
    first = moving.move(["A", "B"], _prices(10, 20), {"s": [0.1, 0.2]}, T0, {"k": 1})
    assert first[0].close == 10.0  # only close converted at this timestamp
    second = moving.move(["A", "B"], _prices(11, 21), {"s": [0.3, 0.4]}, T0 + 1, {"k": 2})
    assert [id(e) for e in second] == [id(e) for e in first]
    # by hand from _prices: every field is the second timestamp's, including the close that
    # was converted at the first one and the prices never read before
    assert [_bar(e) for e in second] == [
        (T0 + 1, "A", 10.0, 13.0, 9.0, 11.0, 110.0, {"s": 0.3}, {"k": 2}),
        (T0 + 1, "B", 20.0, 23.0, 19.0, 21.0, 210.0, {"s": 0.4}, {"k": 2}),
    ]


def test_batch_event_of_an_asset_missing_from_a_batch_keeps_its_last_bar() -> None:
    moving = BatchEvents()
    a, b, c = moving.move(["A", "B", "C"], _prices(10, 20, 30), {"s": [1, 2, 3]}, T0, {})
    kept = _bar(b)
    moved = moving.move(["A", "C"], _prices(11, 31), {"s": [4.0, 6.0]}, T0 + 1, {})
    assert moved == [a, c]
    assert (a.close, c.close, c.signals["s"]) == (11.0, 31.0, 6.0)
    assert _bar(b) == kept == (T0, "B", 19.0, 22.0, 18.0, 20.0, 200.0, {"s": 2}, {})
    back = moving.move(["A", "B", "C"], _prices(12, 22, 32), {"s": [7, 8, 9]}, T0 + 2, {})
    assert back == [a, b, c]
    assert (b.ts_ns, b.close, b.signals["s"]) == (T0 + 2, 22.0, 8)


def test_batch_events_drop_a_signal_the_next_batch_lacks() -> None:
    moving = BatchEvents()
    (event,) = moving.move(["A"], _prices(10), {"s": [1.0], "t": [2.0]}, T0, {})
    moving.move(["A"], _prices(11), {"s": [3.0]}, T0 + 1, {})
    assert dict(event.signals) == {"s": 3.0}
    with pytest.raises(UnknownSignalError, match="this feed carries: s"):
        event.signals["t"]


def test_snapshot_keeps_the_bar_after_its_event_moves() -> None:
    moving = BatchEvents()
    (event,) = moving.move(["A"], _prices(10), {"s": [0.5]}, T0, {"k": 1})
    kept = event.snapshot()
    moving.move(["A"], _prices(11), {"s": [0.7]}, T0 + 1, {"k": 2})
    assert (event.close, event.signals["s"]) == (11.0, 0.7)
    assert _bar(kept) == (T0, "A", 9.0, 12.0, 8.0, 10.0, 100.0, {"s": 0.5}, {"k": 1})
    with pytest.raises(UnknownSignalError):
        kept.signals["typo"]


@pytest.mark.parametrize(
    "keep",
    [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_copied_or_pickled_event_keeps_its_bar_after_the_event_moves(
    keep: Callable[[MarketEvent], MarketEvent],
) -> None:
    moving = BatchEvents()
    ids = ["A", *(f"Z{i}" for i in range(999))]  # a wide batch: its columns pickle to ~50 kB
    event = moving.move(ids, _prices(10, *[1] * 999), {"s": [0.5] * 1000}, T0, {"k": 1})[0]
    kept = keep(event)
    moving.move(ids, _prices(11, *[1] * 999), {"s": [0.7] * 1000}, T0 + 1, {"k": 2})
    assert kept is not event
    assert _bar(kept) == (T0, "A", 9.0, 12.0, 8.0, 10.0, 100.0, {"s": 0.5}, {"k": 1})
    assert len(pickle.dumps(event)) < 1_000  # the bar alone, not the shared columns


ROWS = [
    (0, "A", 10, 11, 9, 10),
    (0, "B", 20, 21, 19, 20),
    (1, "A", 11, 12, 10, 11),
    (1, "B", 21, 22, 20, 21),
    (2, "A", 12, 13, 11, 12),  # B has no bar on day 2
]
SCORES = {"score": [0.1, 0.2, 0.3, 0.4, 0.5]}
# by hand from ROWS/SCORES: (day, asset, close, score)
EXPECTED = [(r[0], r[1], float(r[5]), SCORES["score"][n]) for n, r in enumerate(ROWS)]


class Keeps(Strategy):
    """Keeps every event it is given, and a snapshot of each, past the callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[MarketEvent] = []
        self.snapshots: list[MarketEvent] = []

    def keep(self, event: MarketEvent) -> None:
        self.events.append(event)
        self.snapshots.append(event.snapshot())


class KeepsEvents(Keeps):
    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.keep(event)


class KeepsBatchEvents(Keeps):
    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        for event in batch:
            self.keep(event)


def _seen(events: list[MarketEvent]) -> list[tuple[Any, ...]]:
    return [((e.timestamp - day(0)).days, e.asset_id, e.close, e.signals["score"]) for e in events]


@pytest.mark.parametrize("strategy", [KeepsEvents(), KeepsBatchEvents()], ids=["event", "batch"])
def test_snapshots_kept_past_the_callback_hold_every_bar_the_events_do_not(
    strategy: Keeps,
) -> None:
    Engine(feed=bars(ROWS, SCORES), strategy=strategy).run()
    assert _seen(strategy.snapshots) == EXPECTED
    # the events themselves were moved on (one per asset), so the kept list repeats them
    assert len({id(e) for e in strategy.events}) == 2
    assert _seen(strategy.events) != EXPECTED


@given(
    hnp.arrays(
        st.sampled_from([np.float64, np.float32, np.int64]),
        hnp.array_shapes(max_dims=1, min_side=0, max_side=20),
    ),
    st.booleans(),
)
def test_floats_equal_numpy_tolist_as_python_floats(values: np.ndarray, strided: bool) -> None:
    if strided:
        values = values[::2]
    out = floats(values)
    assert all(type(v) is float for v in out)
    assert np.array_equal(np.array(out), values.astype(np.float64), equal_nan=True)
    assert np.array_equal(np.array(floats(list(values))), np.array(out), equal_nan=True)
