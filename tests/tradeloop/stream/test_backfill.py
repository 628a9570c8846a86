"""Gap backfill and batched streams on 127.0.0.1: a venue-like replay server (shared clock,
GET /history) drops its clients mid-run; the supervisor backfills the gap and the paper
run still ends with the backtest's fills."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import polars as pl
import pytest
from structlog.testing import capture_logs

from tradeloop import Context, Engine
from tradeloop.broker.paper import PaperBroker
from tradeloop.errors import ConfigError, ConnectionLostError, RateLimitError, VenueProtocolError
from tradeloop.events import BarBatchMessage, BarMessage, ContextMessage, Message, Reconnected
from tradeloop.runtime.live import LiveRuntime
from tradeloop.stream.codec import decode
from tradeloop.stream.replay import ReplayFeed
from tradeloop.stream.server import ReplayServer
from tradeloop.stream.supervisor import SupervisedFeed
from tradeloop.stream.websocket import WebSocketFeed

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "examples" / "data"
sys.path.insert(0, str(ROOT / "examples"))
from ml_strategy import MLStrategy  # noqa: E402

VIX = Context(pl.read_parquet(DATA / "vix.parquet"))


def fills(items: list[Any]) -> list[tuple[Any, ...]]:
    return [(f.ts_ns, f.asset_id, f.side, f.qty, f.price, f.commission) for f in items]


@pytest.fixture(scope="module")
def backtest_fills() -> list[tuple[Any, ...]]:
    engine = Engine(
        feed=DATA / "sample.parquet", strategy=MLStrategy(), context=VIX, commission=5e-4
    )
    engine.run()
    return fills(engine.broker.fills)


class DroppingVenue(ReplayServer):
    """A shared-clock server that disconnects every client when timestamp ``drop_at`` is due."""

    def __init__(self, *args: Any, drop_at: int, **kwargs: Any) -> None:
        super().__init__(*args, shared_clock=True, **kwargs)
        self.drop_at = drop_at
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _handle(self, connection: Any) -> None:
        self.connections += 1
        await super()._handle(connection)

    def on_publish(self, k: int) -> None:
        if k == self.drop_at:
            for client in list(self.clients):
                self.clients.discard(client)  # nothing more reaches it, as on a real drop
                task = asyncio.create_task(client.close())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


@pytest.mark.parametrize("batched", [False, True], ids=["bar-messages", "bars-batches"])
async def test_a_drop_on_a_live_clock_is_backfilled_and_ends_like_the_backtest(
    batched: bool, backtest_fills: list[tuple[Any, ...]]
) -> None:
    # 504 daily bars at 3 ms per day: the 50 ms reconnect misses several timestamps
    server = DroppingVenue(
        DATA / "sample.parquet", context=VIX, speed=86_400 / 0.003, batched=batched, drop_at=150
    )
    await server.start()
    try:
        feed = SupervisedFeed(
            WebSocketFeed(server.url), stale_after_s=5.0, base_backoff_s=0.05, seed=3
        )
        broker = PaperBroker(100_000, commission=5e-4)
        runtime = LiveRuntime(feed, MLStrategy(), broker)
        await runtime.run()
    finally:
        await server.close()
    assert server.connections == 2
    assert feed.reconnects == 1
    assert feed.backfilled > 0  # the gap came from GET /history
    assert runtime.timestamps == 504
    assert runtime.late == 0
    assert fills(broker.fills) == backtest_fills


async def test_history_endpoint_answers_a_closed_range_and_refuses_a_bad_query() -> None:
    server = await ReplayServer(DATA / "sample.parquet", context=VIX).start()
    times = server.table.unique_ts_ns.tolist()
    base = f"http://127.0.0.1:{server.port}/history"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}?start_ns={times[2]}&end_ns={times[4]}") as response:
                assert response.status == 200
                messages = [decode(line) for line in (await response.text()).splitlines()]
            async with session.get(f"{base}?start_ns=yesterday") as response:
                assert response.status == 400
                assert "start_ns=<int>" in await response.text()
    finally:
        await server.close()
    bars = [m for m in messages if isinstance(m, BarMessage)]
    assert sorted({b.ts_ns for b in bars}) == times[2:5]
    assert len(bars) == 3 * 5  # every asset of each timestamp
    for message in messages:
        if isinstance(message, ContextMessage):
            assert message.ts_ns <= times[4]


class ScriptedFeed:
    """First connection: A@1 B@1 A@2, then a drop. Second: A@2 B@2 A@3 B@3, then the end."""

    def __init__(self) -> None:
        self.connections = 0
        self.history_calls: list[tuple[int, int | None]] = []

    @staticmethod
    def bar(asset: str, ts: int) -> BarMessage:
        return BarMessage(asset, ts, 1.0, 1.0, 1.0, 1.0, 1.0)

    async def messages(self) -> AsyncIterator[Message]:
        self.connections += 1
        if self.connections == 1:
            for asset, ts in (("A", 1), ("B", 1), ("A", 2)):
                yield self.bar(asset, ts)
            raise ConnectionLostError("dropped")
        for asset, ts in (("A", 2), ("B", 2), ("A", 3), ("B", 3)):
            yield self.bar(asset, ts)

    async def history(self, start_ns: int, end_ns: int | None) -> list[Message]:
        self.history_calls.append((start_ns, end_ns))
        return [
            self.bar(a, t) for t in (1, 2) for a in ("A", "B") if start_ns <= t <= (end_ns or 9)
        ]


async def test_supervisor_backfills_from_the_last_bar_and_drops_the_overlap() -> None:
    source = ScriptedFeed()
    feed = SupervisedFeed(source, base_backoff_s=0.001, seed=0)
    out = [
        "reconnected" if isinstance(m, Reconnected) else f"{m.asset_id}@{m.ts_ns}"  # type: ignore[union-attr]
        async for m in feed.messages()
    ]
    # the history call asks from the last bar time delivered (2) to the first live bar (2);
    # the live A@2 and B@2 repeat it and are dropped
    assert source.history_calls == [(2, 2)]
    assert out == ["A@1", "B@1", "A@2", "reconnected", "A@2", "B@2", "A@3", "B@3"]
    assert (feed.backfilled, feed.duplicates) == (2, 2)


class RefusingHistory(ScriptedFeed):
    """ScriptedFeed whose first history call is refused with ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error: Exception | None = error

    async def history(self, start_ns: int, end_ns: int | None) -> list[Message]:
        if self.error is not None:
            error, self.error = self.error, None
            self.history_calls.append((start_ns, end_ns))
            raise error
        return await super().history(start_ns, end_ns)


@pytest.mark.parametrize(
    ("error", "event"),
    [
        (RateLimitError("binance klines: HTTP 429, Retry-After 0.05", 0.05), "feed_rate_limited"),
        (VenueProtocolError("binance klines: row 3 is not a list"), "feed_error"),
    ],
)
async def test_a_refused_backfill_holds_then_backfills_again(error: Exception, event: str) -> None:
    source = RefusingHistory(error)
    feed = SupervisedFeed(source, base_backoff_s=0.001, seed=0)
    with capture_logs() as logs:
        out = [
            "reconnected" if isinstance(m, Reconnected) else f"{m.asset_id}@{m.ts_ns}"  # type: ignore[union-attr]
            async for m in feed.messages()
        ]
    held = next(x for x in logs if x["event"] == event)
    assert held["error_type"] == type(error).__name__
    if isinstance(error, RateLimitError):
        assert held["delay_s"] >= 0.05  # the venue's Retry-After, not the 1 ms backoff
        assert feed.rate_limited == 1
    # refused, then asked again from the same bar: the gap is still filled, nothing twice
    assert source.history_calls == [(2, 2), (2, 2)]
    assert out == ["A@1", "B@1", "A@2", "reconnected", "reconnected", "A@2", "B@2", "A@3", "B@3"]


async def test_restart_backfills_from_the_journal_point_on_the_first_connection() -> None:
    source = ScriptedFeed()
    source.connections = 1  # behave as the second connection: A@2 B@2 A@3 B@3
    feed = SupervisedFeed(source, backfill_from=1)
    out = [f"{m.asset_id}@{m.ts_ns}" async for m in feed.messages()]  # type: ignore[union-attr]
    assert source.history_calls == [(1, 2)]
    assert out == ["A@1", "B@1", "A@2", "B@2", "A@3", "B@3"]


async def test_batched_in_process_replay_matches_the_backtest(
    backtest_fills: list[tuple[Any, ...]],
) -> None:
    feed = ReplayFeed(DATA / "sample.parquet", context=VIX)
    broker = PaperBroker(100_000, commission=5e-4)
    runtime = LiveRuntime(feed, MLStrategy(), broker)
    await runtime.run()
    assert runtime.timestamps == 504
    assert runtime.bars_seen == 2520
    assert fills(broker.fills) == backtest_fills


class CountingFeed:
    """Per-bar messages; records how many it had handed out when each timestamp was decided."""

    def __init__(self, inner: ReplayFeed) -> None:
        self.inner = inner
        self.handed = 0

    async def messages(self) -> AsyncIterator[Message]:
        async for message in self.inner.messages():
            self.handed += 1
            yield message


async def test_a_known_universe_hands_over_a_timestamp_as_soon_as_it_is_complete() -> None:
    inner = ReplayFeed(DATA / "sample.parquet", batched=False, signal_columns=["ml_pred"])
    feed = CountingFeed(inner)
    seen: list[int] = []

    class Watcher(MLStrategy):  # type: ignore[misc]
        def on_timestamp_batch(self, batch: Any, context: Any) -> None:
            seen.append(feed.handed)

    universe = set(inner.table.asset_ids)
    await LiveRuntime(feed, Watcher(), PaperBroker(), universe=universe).run()
    # the k-th timestamp is decided right after its 5th bar, not when the next one starts
    assert seen == [5 * (k + 1) for k in range(504)]


def test_batched_message_is_one_frame_per_timestamp() -> None:
    feed = ReplayFeed(DATA / "sample.parquet", signal_columns=["ml_pred"])

    async def collect() -> list[Message]:
        return [m async for m in feed.messages()]

    messages = asyncio.run(collect())
    assert len(messages) == 504
    first = messages[0]
    assert isinstance(first, BarBatchMessage)
    frame = pl.read_parquet(DATA / "sample.parquet").sort("timestamp", "asset_id").head(5)
    assert first.asset_ids == frame["asset_id"].to_list()
    assert first.close.tolist() == frame["close"].to_list()
    assert first.signals["ml_pred"].tolist() == frame["ml_pred"].to_list()


def test_engine_runs_a_stream_with_a_paper_broker_and_returns_the_backtests_result() -> None:
    replay = Engine(
        feed=DATA / "sample.parquet", strategy=MLStrategy(), context=VIX, commission=5e-4
    ).run()
    paper = Engine(
        ReplayFeed(DATA / "sample.parquet", context=VIX),
        MLStrategy(),
        PaperBroker(100_000, commission=5e-4),
    ).run()
    assert paper.equity_curve.equals(replay.equity_curve)
    assert paper.fills.equals(replay.fills)
    assert paper.trades.equals(replay.trades)
    for name in ("final_value", "sharpe", "max_drawdown", "n_trades", "turnover"):
        assert paper[name] == pytest.approx(replay[name], rel=1e-12), name


async def test_engine_over_a_websocket_inside_an_event_loop_uses_run_async() -> None:
    server = await ReplayServer(DATA / "sample.parquet", context=VIX, batched=True).start()
    try:
        engine = Engine(WebSocketFeed(server.url), MLStrategy(), PaperBroker(100_000))
        with pytest.raises(ConfigError, match=r"await engine\.run_async\(\)"):
            engine.run()
        result = await engine.run_async()
    finally:
        await server.close()
    assert result.config["n_bars"] == 2520
    assert result.fills.height > 100
    assert result["final_value"] == pytest.approx(result.equity_curve["equity"][-1])


async def test_binary_frames_over_a_websocket_match_the_backtest(
    backtest_fills: list[tuple[Any, ...]],
) -> None:
    server = await ReplayServer(DATA / "sample.parquet", context=VIX, binary=True).start()
    try:
        broker = PaperBroker(100_000, commission=5e-4)
        runtime = LiveRuntime(WebSocketFeed(server.url), MLStrategy(), broker)
        await runtime.run()
    finally:
        await server.close()
    assert runtime.timestamps == 504
    assert fills(broker.fills) == backtest_fills


class QuietAfterReconnect(ScriptedFeed):
    """First connection: A@1 B@1, then a drop. Second: nothing (the session closed) until the
    test opens the next session; the venue's history has A@2 and B@2, published while we were
    away. The quiet wait must not end the connection: A@3 B@3 come on it."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet = asyncio.Event()

    async def messages(self) -> AsyncIterator[Message]:
        self.connections += 1
        if self.connections == 1:
            yield self.bar("A", 1)
            yield self.bar("B", 1)
            raise ConnectionLostError("dropped")
        await self.quiet.wait()  # silent until told (the next session): then A@3 B@3, the end
        yield self.bar("A", 3)
        yield self.bar("B", 3)


async def test_a_market_quiet_after_a_reconnect_is_backfilled_up_to_now() -> None:
    source = QuietAfterReconnect()
    feed = SupervisedFeed(source, base_backoff_s=0.001, stale_after_s=0.05, seed=0)
    out: list[str] = []
    with capture_logs() as logs:
        async for m in feed.messages():
            out.append("reconnected" if isinstance(m, Reconnected) else f"{m.asset_id}@{m.ts_ns}")  # type: ignore[union-attr]
            if out[-1] == "B@2":
                source.quiet.set()  # the missed bars came without a live bar: next session
    # no live bar within stale_after_s: the history is asked from the last bar (1) up to now
    assert source.history_calls == [(1, None)]
    # the history starts at the last bar time delivered, inclusive (the runtime drops the
    # half-received timestamp at a reconnect and skips what it handled), then the missed ones
    assert out == ["A@1", "B@1", "reconnected", "A@1", "B@1", "A@2", "B@2", "A@3", "B@3"]
    assert source.connections == 2  # the live bars came on the connection that went quiet
    assert any(x["event"] == "feed_quiet_after_reconnect" for x in logs)
