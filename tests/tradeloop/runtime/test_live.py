"""The live path end to end on 127.0.0.1: replay server → WebSocket → runtime → PaperBroker.

The same strategy over the same data must give the same fills as the backtest.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import structlog
from websockets.asyncio.server import ServerConnection, serve

from tests.conftest import bars, day
from tradeloop import Context, Engine, MarketEvent, ReplayFeed, Strategy
from tradeloop.broker.paper import PaperBroker
from tradeloop.clock import utc_ns
from tradeloop.errors import ConnectionLostError, VenueProtocolError
from tradeloop.events import BarMessage, EndMessage
from tradeloop.runtime.live import LiveRuntime
from tradeloop.stream.codec import decode, encode
from tradeloop.stream.server import ReplayServer
from tradeloop.stream.supervisor import SupervisedFeed
from tradeloop.stream.websocket import WebSocketFeed

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "examples" / "data"
sys.path.insert(0, str(ROOT / "examples"))
from ml_strategy import MLStrategy  # noqa: E402


def fills(items: list) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (f.timestamp, f.asset_id, f.side, f.qty, f.price, f.commission, f.reason) for f in items
    ]


async def test_paper_run_over_websocket_matches_backtest_fill_for_fill() -> None:
    vix = pl.read_parquet(DATA / "vix.parquet")
    backtest = Engine(
        feed=DATA / "sample.parquet", strategy=MLStrategy(), context=Context(vix), commission=0.0005
    )
    result = backtest.run()

    server = await ReplayServer(DATA / "sample.parquet", context=Context(vix)).start()
    try:
        broker = PaperBroker(100_000, commission=0.0005)
        runtime = LiveRuntime(WebSocketFeed(server.url), MLStrategy(), broker)
        await runtime.run()
    finally:
        await server.close()
    assert runtime.timestamps == result.equity_curve.height
    assert runtime.bars_seen == result.config["n_bars"]
    assert len(broker.fills) == result.fills.height > 100
    assert fills(broker.fills) == fills(backtest.broker.fills)
    assert broker.equity() == pytest.approx(result["final_value"], abs=1e-9)


def test_codec_round_trips_and_rejects_malformed_frames() -> None:
    bar = BarMessage("AAA", 1_700_000_000_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0, {"p": 0.7})
    assert decode(encode(bar)) == bar
    assert decode(encode(EndMessage())) == EndMessage()
    for bad, why in [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "tick"}', "unknown message type"),
        (
            '{"type": "bar", "asset_id": "A", "ts_ns": 1, "open": "1", "high": 1, "low": 1,'
            ' "close": 1, "volume": 1}',
            "open is '1'",
        ),
        (
            '{"type": "bar", "asset_id": "A", "ts_ns": 1.5, "open": 1, "high": 1, "low": 1,'
            ' "close": 1, "volume": 1}',
            "integer ts_ns",
        ),
    ]:
        with pytest.raises(VenueProtocolError, match=why):
            decode(bad)


class Closes(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.closes: list[float] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.closes.append(event.close)


async def test_runtime_skips_garbage_late_and_duplicate_bars_and_counts_them() -> None:
    def bar(asset: str, minute: int, close: float) -> str:
        return encode(BarMessage(asset, minute * 60_000_000_000, close, close, close, close, 1.0))

    frames = [
        bar("A", 1, 10.0),
        "garbage{",
        bar("A", 2, 11.0),
        bar("A", 2, 99.0),  # duplicate
        bar("A", 1, 98.0),  # late
        bar("A", 3, 12.0),
        '{"type": "bar", "asset_id": "A"}',
        encode(EndMessage()),
    ]

    async def handler(connection: ServerConnection) -> None:
        for frame in frames:
            await connection.send(frame)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        feed = WebSocketFeed(f"ws://127.0.0.1:{port}")
        strategy = Closes()
        runtime = LiveRuntime(feed, strategy, PaperBroker())
        with structlog.testing.capture_logs() as logs:
            await runtime.run()
    skipped = [(e["event"], e["asset"], e["ts"][:16]) for e in logs if e["event"].endswith("_bar")]
    assert skipped == [
        ("duplicate_bar", "A", "1970-01-01 00:02"),
        ("late_bar", "A", "1970-01-01 00:01"),
    ]
    assert feed.skipped == 2
    assert (runtime.late, runtime.duplicates, runtime.timestamps) == (1, 1, 3)
    assert strategy.closes == [10.0, 11.0, 12.0]  # neither the duplicate 99 nor the late 98


async def test_feed_to_nothing_raises_connection_lost() -> None:
    feed = WebSocketFeed("ws://127.0.0.1:9")  # the discard port: nothing listens here
    with pytest.raises(ConnectionLostError, match="cannot connect"):
        async for _ in feed.messages():
            pass


class FaultyReplay(ReplayServer):
    """The first connection drops (or goes silent) after ``after`` messages; then clean."""

    def __init__(self, *args: Any, fault: str, after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fault, self.after, self.connections = fault, after, 0

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        if self.connections > 1:
            await super()._handle(connection)
            return
        sent = 0
        for _, _, frames in self.frames():
            for frame in frames:
                if sent == self.after:
                    if self.fault == "drop":
                        await connection.close()
                    else:
                        await connection.wait_closed()  # silent until the client gives up
                    return
                await connection.send(frame)
                sent += 1


@pytest.mark.parametrize("fault", ["drop", "stall"])
async def test_feed_drop_or_silent_stall_reconnects_and_ends_with_the_clean_fills(
    fault: str,
) -> None:
    vix = pl.read_parquet(DATA / "vix.parquet")
    backtest = Engine(
        feed=DATA / "sample.parquet", strategy=MLStrategy(), context=Context(vix), commission=0.0005
    )
    backtest.run()
    server = await FaultyReplay(
        DATA / "sample.parquet", context=Context(vix), fault=fault, after=1_234
    ).start()
    try:
        # stale_after_s is also the wait for the first live bar after the reconnect: past it
        # the supervisor backfills up to now, and this replay (which restarts at its first
        # bar, unlike a venue) then sends only late bars, so it must be long enough for a
        # loaded machine (2 test workers on 2 cores) to send that first frame
        feed = SupervisedFeed(
            WebSocketFeed(server.url), stale_after_s=1.0, base_backoff_s=0.01, seed=1
        )
        broker = PaperBroker(100_000, commission=0.0005)
        runtime = LiveRuntime(feed, MLStrategy(), broker)
        await runtime.run()
    finally:
        await server.close()
    # one fault, so normally one reconnect; a loaded machine may stall a clean stream too
    assert server.connections == feed.reconnects + 1 >= 2
    assert feed.stalls >= (1 if fault == "stall" else 0)
    assert runtime.replayed > 0  # the restarted stream's first bars were skipped, not redone
    assert runtime.late == 0
    assert fills(broker.fills) == fills(backtest.broker.fills)


async def test_supervisor_gives_up_after_max_attempts() -> None:
    feed = SupervisedFeed(WebSocketFeed("ws://127.0.0.1:9"), base_backoff_s=0.001, max_attempts=2)
    with pytest.raises(ConnectionLostError):
        async for _ in feed.messages():
            pass
    assert feed.reconnects == 3


async def test_stop_in_the_middle_of_a_timestamp_leaves_it_whole_for_the_restart() -> None:
    # three assets a day, one bar message each: a stop comes after the first bar of day 2
    # has arrived (it closes day 1); handling that one bar as "day 2" would lose the others
    frame = bars([(d, a, 10, 11, 9, 10) for d in range(5) for a in ("A", "B", "C")])
    everything = sorted((utc_ns(day(d)), a) for d in range(5) for a in ("A", "B", "C"))
    handled: list[tuple[int, str]] = []

    def record(stamp: Any) -> None:
        handled.extend((stamp[0], asset) for asset in stamp[1])

    def stop_after_two(ts_ns: int) -> None:
        if first.timestamps == 2:
            first.request_stop()

    broker = PaperBroker(100_000)
    first = LiveRuntime(
        ReplayFeed(frame, batched=False),
        Strategy(),
        broker,
        record=record,
        on_timestamp=stop_after_two,
    )
    await first.run()
    assert first.stopped
    assert handled == everything[:6]  # days 0 and 1 whole; nothing of day 2
    again = LiveRuntime(
        ReplayFeed(frame, batched=False),
        Strategy(),
        PaperBroker(100_000),
        record=record,
        resume={"last_ts_ns": first.last_flushed},
    )
    await again.run()
    assert handled == everything  # every bar once
