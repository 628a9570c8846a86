"""Binance codec throughput: combined-stream kline frames decoded per second (target ≥ 200,000).

Frames are the recorded closed kline with varying times, symbols and prices, as bytes;
best of ``--repeat`` runs of ``--frames`` decodes. Wall and CPU time are both reported:
on a shared machine the CPU figure is the one that compares across runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson
from adapters.binance.codec import decode_stream_frame

RECORDED = (
    Path(__file__).resolve().parents[1] / "tests/adapters/binance/payloads/ws_kline_closed.json"
)


def frames(n: int) -> list[bytes]:
    template = orjson.loads(RECORDED.read_bytes())
    out = []
    for i in range(n):
        frame = template.copy()
        data = dict(template["data"], s=f"SYM{i % 50}USDT")
        k = dict(data["k"], t=1672515780000 + 60_000 * i, s=data["s"])
        base = 100.0 + i % 997
        k.update(o=f"{base:.8f}", h=f"{base + 2:.8f}", l=f"{base - 1:.8f}", c=f"{base + 1:.8f}")
        frame["data"] = dict(data, k=k)
        out.append(orjson.dumps(frame))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    batch = frames(args.frames)
    best_wall = best_cpu = float("inf")
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for frame in batch:
            decode_stream_frame(frame)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    print(
        f"binance kline frames decoded: {args.frames / best_wall:,.0f}/s wall, "
        f"{args.frames / best_cpu:,.0f}/s per CPU-second ({len(batch[0])} B frames)"
    )


if __name__ == "__main__":
    main()
