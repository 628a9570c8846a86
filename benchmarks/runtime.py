"""The async runtime's benchmarks (issue 4), printed as a table; `make bench` runs it.

(f) throughput: bars/s through ``LiveRuntime`` from an in-process ``ReplayFeed`` over the
    500-asset daily panel: batched (one ``bars`` message per timestamp; target ≥ 200,000)
    and per-bar messages, with a cross-sectional strategy that rebalances every 5 days.
(g) latency: a ``tradeloop serve-replay --live-clock`` subprocess streams 500 assets over a
    loopback WebSocket; for each timestamp, the time from the frame that completes it
    arriving at the client to the strategy's order returning from ``submit`` (target p99
    < 1 ms). Batched frames, and per-bar frames with a known universe.

Wall-clock numbers on a shared VM: best of ``--repeat`` for throughput, all timestamps'
latencies pooled for the percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from data import OUT, cached, daily_panel  # noqa: E402
from run import machine  # noqa: E402
from tradeloop import Strategy  # noqa: E402
from tradeloop.broker.paper import PaperBroker  # noqa: E402
from tradeloop.events import Message, TimestampBatch  # noqa: E402
from tradeloop.runtime.live import LiveRuntime  # noqa: E402
from tradeloop.stream.codec import decode  # noqa: E402
from tradeloop.stream.replay import ReplayFeed  # noqa: E402
from tradeloop.stream.websocket import WebSocketFeed  # noqa: E402


class Rotation(Strategy):
    """Every 5th timestamp, hold the top 10 assets by ``score`` in equal weights."""

    def __init__(self) -> None:
        super().__init__()
        self.k = 0

    def on_timestamp_batch(self, batch: TimestampBatch, context: Any) -> None:
        self.k += 1
        if self.k % 5:
            return
        top = np.argsort(-batch.signals["score"])[:10]
        self.rebalance_to_weights({batch.asset_ids[i]: 0.098 for i in top.tolist()})


class OneOrder(Strategy):
    """One order per timestamp; records when ``submit`` returned (the latency's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[int] = []

    def on_timestamp_batch(self, batch: TimestampBatch, context: Any) -> None:
        best = int(np.argmax(batch.signals["score"]))
        self.buy(batch.asset_ids[best], 1)
        self.submitted.append(time.perf_counter_ns())


async def throughput(path: Path, batched: bool) -> dict[str, float]:
    feed = ReplayFeed(path, signal_columns=["score"], batched=batched)
    broker = PaperBroker(1_000_000.0, commission=0.0005)
    runtime = LiveRuntime(feed, Rotation(), broker)
    started = time.perf_counter()
    await runtime.run()
    seconds = time.perf_counter() - started
    return {
        "bars": runtime.bars_seen,
        "seconds": seconds,
        "bars_per_s": runtime.bars_seen / seconds,
        "fills": len(broker.fills),
    }


class StampedFeed(WebSocketFeed):
    """A WebSocketFeed that notes when each frame arrived, before decoding it, and when the
    socket last delivered bytes before that: the wait between the two (the library parsing,
    and inflating, the frame; the event loop resuming this task) is outside the bar→order
    figure, and reported beside it."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.arrivals: dict[int, int] = {}  # ts_ns -> arrival of its last frame
        self.waits_ns: list[int] = []  # bytes read from the socket -> frame in the handler
        self.parses_ns: list[int] = []  # of which inside the library's data_received
        self._read_ns = self._parsed_ns = 0

    async def messages(self) -> AsyncIterator[Message]:
        from websockets.asyncio.client import connect

        # the feed's own connection (an older tree: the library's defaults, deflate included)
        opened = (
            self.connection() if hasattr(self, "connection") else connect(self.url, max_size=2**24)
        )
        async with opened as connection:
            received = connection.data_received

            def stamped(data: bytes) -> None:
                self._read_ns = time.perf_counter_ns()
                received(data)
                self._parsed_ns = time.perf_counter_ns()

            connection.data_received = stamped  # type: ignore[method-assign]
            async for frame in connection:
                arrived = time.perf_counter_ns()
                self.waits_ns.append(arrived - self._read_ns)
                self.parses_ns.append(self._parsed_ns - self._read_ns)
                message = decode(frame)
                ts_ns = getattr(message, "ts_ns", None)
                if type(message).__name__ == "EndMessage":
                    return
                if ts_ns is not None and type(message).__name__ != "ContextMessage":
                    self.arrivals[ts_ns] = arrived
                yield message


def latency(path: Path, frames: str, pace_s: float, n_days: int) -> dict[str, float]:
    """``frames``: "binary" (one columnar frame per timestamp), "batch" (one JSON ``bars``
    frame per timestamp) or "bar" (one JSON frame per bar, hand-over on a known universe)."""
    batched = frames != "bar"
    speed = 86_400 / pace_s  # business days: a weekend gap is 3 × pace_s
    command = [
        sys.executable, "-m", "tradeloop", "serve-replay", str(path), "--signals", "score",
        "--port", "0", "--speed", str(speed), "--live-clock",
    ]  # fmt: skip
    if batched:
        command.append("--binary" if frames == "binary" else "--batch")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = next(json.loads(x)["url"] for x in server.stdout if "replay_listening" in x)
        feed = StampedFeed(url)
        strategy = OneOrder()
        universe = None if batched else [f"A{i:03d}" for i in range(500)]
        runtime = LiveRuntime(feed, strategy, PaperBroker(1e9), universe=universe)
        asyncio.run(runtime.run())
    finally:
        server.terminate()
        server.wait(timeout=30)
    times = sorted(feed.arrivals)
    assert len(strategy.submitted) == len(times) == n_days, (len(strategy.submitted), n_days)
    lat_us = np.array(
        [
            (done - feed.arrivals[ts]) / 1e3
            for ts, done in zip(times, strategy.submitted, strict=True)
        ]
    )
    wait_us = np.array(feed.waits_ns[1:]) / 1e3  # the first frame waited for the connection
    return {
        "timestamps": len(lat_us),
        "p50_us": float(np.percentile(lat_us, 50)),
        "p99_us": float(np.percentile(lat_us, 99)),
        "max_us": float(lat_us.max()),
        "wait_p50_us": float(np.percentile(wait_us, 50)),
        "wait_p99_us": float(np.percentile(wait_us, 99)),
        "parse_p50_us": float(np.percentile(np.array(feed.parses_ns[1:]) / 1e3, 50)),
        # the first frames pay the run's first order, fill and decode of a header
        "p99_from_10th_us": float(np.percentile(lat_us[10:], 99)),
        "slowest": [(int(i), round(float(lat_us[i]))) for i in np.argsort(-lat_us)[:8]],
    }


def latency_runs(short: Path, runs: int, latency_days: int) -> None:
    """(g) with binary frames only, ``runs`` times: each run's p50/p99 and their medians (for
    an interleaved A/B: put another tree's ``src`` first on ``PYTHONPATH``)."""
    import tradeloop

    rows = [latency(short, "binary", 0.01, latency_days) for _ in range(runs)]
    for row in rows:
        print(
            f"p50 {row['p50_us']:,.0f} µs  p99 {row['p99_us']:,.0f} µs  max {row['max_us']:,.0f}"
            f" µs  socket→handler wait p50 {row['wait_p50_us']:,.0f} p99 {row['wait_p99_us']:,.0f}"
            f" (in data_received p50 {row['parse_p50_us']:,.0f}); p99 from the 10th frame"
            f" {row['p99_from_10th_us']:,.0f} µs"
        )
    p50 = float(np.median([r["p50_us"] for r in rows]))
    p99 = float(np.median([r["p99_us"] for r in rows]))
    print(f"median of {runs}: p50 {p50:,.0f} µs  p99 {p99:,.0f} µs  ({tradeloop.__file__})")
    print(json.dumps({"p50_us": p50, "p99_us": p99, "runs": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--latency-only", action="store_true", help="only (g) binary, --repeat runs, medians"
    )
    args = parser.parse_args()
    n_days = 252 if args.quick else 2_520
    panel = cached(f"panel_500x{n_days}", lambda: daily_panel(500, n_days))
    latency_days = 100 if args.quick else 600
    short = OUT / f"panel_500x{latency_days}.parquet"
    if not short.exists():
        import polars as pl

        frame = pl.read_parquet(panel)
        days = frame["timestamp"].unique().sort()[:latency_days]
        frame.filter(pl.col("timestamp").is_in(days.implode())).write_parquet(short)

    if args.latency_only:
        latency_runs(short, args.repeat, latency_days)
        return
    results: dict[str, Any] = {"machine": machine()}
    for batched in (True, False):
        runs = [asyncio.run(throughput(panel, batched)) for _ in range(args.repeat)]
        best = max(runs, key=lambda r: r["bars_per_s"])
        results[f"throughput_{'batched' if batched else 'per_bar'}"] = best
    results["latency_binary"] = latency(short, "binary", 0.01, latency_days)
    results["latency_batched"] = latency(short, "batch", 0.01, latency_days)
    results["latency_per_bar"] = latency(short, "bar", 0.05, latency_days)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t_b, t_p = results["throughput_batched"], results["throughput_per_bar"]
    l_x, l_b, l_p = (results[f"latency_{k}"] for k in ("binary", "batched", "per_bar"))
    print(f"\nasync runtime on {results['machine']['cpu']} ({results['machine']['cores']} cores)")
    verdict = "PASS" if t_b["bars_per_s"] >= 200_000 else "MISS"
    print(f"(f) batched  500 x {n_days}: {t_b['bars_per_s']:>12,.0f} bars/s  target ≥ 200,000")
    print(f"    {verdict} ({t_b['fills']} fills)")
    print(f"(f) per-bar  500 x {n_days}: {t_p['bars_per_s']:>12,.0f} bars/s")
    for label, lat in (
        ("binary columnar frames", l_x),
        ("JSON batch frames", l_b),
        ("per-bar JSON frames", l_p),
    ):
        verdict = "PASS" if lat["p99_us"] < 1_000 else "MISS"
        print(f"(g) {label}, 500 assets, {lat['timestamps']} timestamps:")
        print(
            f"    p50 {lat['p50_us']:,.0f} µs  p99 {lat['p99_us']:,.0f} µs  "
            f"max {lat['max_us']:,.0f} µs  target p99 < 1 ms {verdict}"
        )
    print(f"peak RSS {results['peak_rss_mb']:.0f} MB")
    OUT.mkdir(exist_ok=True)
    (OUT / "runtime.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
