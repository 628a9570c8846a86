"""The per-timestamp order of work, cross-sectional batches, and the progress bar."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.conftest import bars, day
from tradeloop import Context, Engine, MarketEvent, Strategy, TimestampBatch

ROWS = [
    (0, "A", 10, 11, 9, 10),
    (0, "B", 20, 21, 19, 20),
    (0, "C", 30, 31, 29, 30),
    (1, "A", 11, 12, 10, 11),
    (1, "C", 29, 30, 28, 29),  # B has no bar on day 1
    (2, "A", 12, 13, 11, 12),
    (2, "B", 21, 22, 20, 21),
    (2, "C", 28, 29, 27, 28),
]
SCORES = {"score": [0.1, 0.9, 0.5, 0.8, 0.2, 0.3, 0.7, 0.6]}


class Both(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.batches: list[TimestampBatch] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.calls.append(f"event {event.timestamp.day} {event.asset_id}")

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        self.calls.append(f"batch {batch.timestamp.day} n={len(batch)}")
        self.batches.append(batch)


def test_per_bar_calls_come_before_the_batch_at_each_timestamp() -> None:
    strategy = Both()
    Engine(feed=bars(ROWS, SCORES), strategy=strategy).run()
    assert strategy.calls == [
        "event 1 A",
        "event 1 B",
        "event 1 C",
        "batch 1 n=3",
        "event 2 A",
        "event 2 C",
        "batch 2 n=2",
        "event 3 A",
        "event 3 B",
        "event 3 C",
        "batch 3 n=3",
    ]


def test_batch_gives_aligned_numpy_columns_and_events() -> None:
    strategy = Both()
    Engine(feed=bars(ROWS, SCORES), strategy=strategy, context=None).run()
    day1 = strategy.batches[1]
    assert day1.asset_ids == ["A", "C"]
    assert isinstance(day1.close, np.ndarray)
    assert day1.close.tolist() == [11.0, 29.0]
    assert day1.signals["score"].tolist() == [0.8, 0.2]
    event = day1[1]
    assert (event.asset_id, event.close, event.signals["score"]) == ("C", 29.0, 0.2)
    assert [e.asset_id for e in day1] == ["A", "C"]


class TopOne(Strategy):
    """Hold only the best-scoring asset, rebalanced every timestamp."""

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        best = batch.asset_ids[int(np.argmax(batch.signals["score"]))]
        self.rebalance_to_weights({best: 0.5})


def test_cross_sectional_rotation_trades_the_ranked_asset() -> None:
    result = Engine(feed=bars(ROWS, SCORES), strategy=TopOne()).run()
    fills = [
        (r["timestamp"].day, r["asset_id"], r["side"], r["qty"], r["price"])
        for r in result.fills.iter_rows(named=True)
    ]
    # Jan 1: best is B (0.9): buy 50,000 / 20 = 2,500 B. Jan 2: B has no bar, so that order
    # waits; best is now A (0.8): the pending B buy is withdrawn (not offset by a short sale)
    # and A gets 50,000 / 11 = 4,545, filled at A's Jan 3 open of 12. Jan 3: best is B (0.7):
    # sell the 4,545 A and buy 50,000 / 21 = 2,380 B, both still open when the data ends.
    assert fills == [(3, "A", "buy", 4_545.0, 12.0)]
    orders = result.orders.select("asset_id", "side", "qty", "status").rows()
    assert orders == [
        ("B", "buy", 2_500.0, "cancelled"),
        ("A", "buy", 4_545.0, "filled"),
        ("A", "sell", 4_545.0, "accepted"),
        ("B", "buy", 2_380.0, "accepted"),
    ]


def test_progress_bar_is_shown_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    Engine(feed=bars(ROWS), strategy=Strategy(), progress=True).run()
    assert "backtest" in capsys.readouterr().err


def test_context_snapshot_is_the_same_object_for_every_asset_at_a_timestamp() -> None:
    seen: list[tuple[int, int]] = []

    class Record(Strategy):
        def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
            seen.append((event.timestamp.day, id(context)))
            assert event.context is context

    vix = {bars(ROWS)["timestamp"][0]: {"VIX": 20.0}}
    Engine(feed=bars(ROWS), strategy=Record(), context=Context(vix)).run()
    per_day: dict[int, set[int]] = {}
    for d, ident in seen:
        per_day.setdefault(d, set()).add(ident)
    assert all(len(idents) == 1 for idents in per_day.values())


class Normalises(Strategy):
    """Writes into the batch, as `batch.close /= batch.close.mean()` would."""

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        batch.close /= batch.close.mean()


class CopiesFirst(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.normalised: list[list[float]] = []

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        close = batch.close.copy()
        close /= close.mean()
        self.normalised.append(close.round(6).tolist())
        if batch.timestamp.day == 1:
            self.buy("A", 1)


class BinaryFrames:
    """A replay's batches as a binary feed hands them over: each encoded as a TLB2 frame and
    decoded again (columns are read-only views of the frame's bytes, passed on as they are)."""

    def __init__(self, data: pl.DataFrame) -> None:
        from tradeloop import ReplayFeed

        self.feed = ReplayFeed(data, batched=True)

    async def messages(self) -> Any:
        from tradeloop.events import BarBatchMessage
        from tradeloop.stream.codec import decode, encode_binary

        async for message in self.feed.messages():
            if isinstance(message, BarBatchMessage):
                message = decode(encode_binary(message))
                assert message.read_only
            yield message


@pytest.mark.parametrize("stream", ["replay", "stream", "binary"])
def test_batch_arrays_written_by_a_strategy_are_refused_and_the_bars_unchanged(
    stream: str,
) -> None:
    from tradeloop import PaperBroker, ReplayFeed

    data = bars(ROWS)

    def feed() -> Any:
        return {"replay": data, "stream": ReplayFeed(data), "binary": BinaryFrames(data)}[stream]

    engine = (
        Engine(feed(), Normalises(), PaperBroker(100_000))
        if stream != "replay"
        else Engine(feed=data, strategy=Normalises())
    )
    with pytest.raises(ValueError, match="read-only"):
        engine.run()
    # a strategy that copies first runs, and the broker still fills at the real open (11)
    strategy = CopiesFirst()
    result = (
        Engine(feed(), strategy, PaperBroker(100_000))
        if stream != "replay"
        else Engine(feed(), strategy)
    ).run()
    assert strategy.normalised[0] == [0.5, 1.0, 1.5]  # 10, 20, 30 over their mean 20
    assert result.fills["price"].to_list() == [11.0]


class Recorder(Strategy):
    """Threshold trades; records every input a callback saw (values, not the event)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Any, ...]] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        score = event.signals["score"]
        self.seen.append(
            (event.ts_ns, event.timestamp, event.asset_id, event.open, event.close, score)
        )
        held = self.get_position(event.asset_id)
        if held == 0 and score > 0.6:
            self.buy(event.asset_id, 3)
        elif held > 0 and score < 0.4:
            self.close_position(event.asset_id)


def test_one_bar_per_timestamp_loop_matches_the_general_loop() -> None:
    # one asset, so every timestamp has one bar: without context and risk the dispatcher
    # takes its one-bar loop; a context (a snapshot looked up per timestamp) forces the
    # general loop over the same bars. Fills, equity and every callback's inputs must agree.
    rng = np.random.default_rng(7)
    n = 40
    closes = (100 + rng.normal(0, 1, n).cumsum()).tolist()
    rows = [(d, "A", c, c + 1, c - 1, c) for d, c in enumerate(closes)]
    scores = {"score": rng.uniform(0, 1, n).tolist()}
    fast, general = Recorder(), Recorder()
    one = Engine(feed=bars(rows, scores), strategy=fast).run()
    other = Engine(
        feed=bars(rows, scores),
        strategy=general,
        context=Context(pl.DataFrame({"timestamp": [day(0)], "flat": [1.0]})),
    ).run()
    assert one.fills.height > 4
    assert one.fills.equals(other.fills)
    assert one.equity_curve.equals(other.equity_curve)
    assert fast.seen == general.seen


class BatchEvents(Strategy):
    """Reads every bar of each batch as events; records their values and identities."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[Any, ...]] = []
        self.ids: list[list[int]] = []

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        events = list(batch)
        self.ids.append([id(e) for e in events])
        self.values.append(
            tuple((e.ts_ns, e.asset_id, e.open, e.close, e.signals["score"]) for e in events)
        )


def test_batch_events_carry_each_bar_and_are_distinct_within_a_batch() -> None:
    strategy = BatchEvents()
    Engine(feed=bars(ROWS, SCORES), strategy=strategy).run()
    day_ns = 86_400 * 1_000_000_000
    t0 = int(day(0).timestamp()) * 1_000_000_000
    # by hand from ROWS/SCORES: (day, asset, open, close) with the score of that row
    expected = [
        tuple(
            (t0 + r[0] * day_ns, r[1], float(r[2]), float(r[5]), SCORES["score"][n])
            for n, r in enumerate(ROWS)
            if r[0] == d
        )
        for d in range(3)
    ]
    assert strategy.values == expected
    assert all(len(set(ids)) == len(ids) for ids in strategy.ids)


class WritesFeature(Strategy):
    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        batch.signals["strength"][0] = 0.0


def test_a_feature_joined_into_a_binary_frame_is_read_only_too() -> None:
    """A binary frame's own columns reach the strategy unsliced; the feature join adds new
    (writable) columns to the timestamp, so its batch is made of read-only views again."""
    from tradeloop import CallableFeatureProvider, PaperBroker

    async def strength(asset_id: str, when: Any, bar: Mapping[str, float]) -> Any:
        return {"strength": (bar["close"] - bar["low"]) / (bar["high"] - bar["low"])}

    engine = Engine(
        BinaryFrames(bars(ROWS)),
        WritesFeature(),
        PaperBroker(100_000),
        features=CallableFeatureProvider(strength),
    )
    with pytest.raises(ValueError, match="read-only"):
        engine.run()
