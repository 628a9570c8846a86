"""Alpaca bar-stream codec throughput: bar messages decoded per second (target ≥ 200,000/s).

Frames shaped as the v2 stream sends them (a JSON array of ``"b"`` bars, one minute per
frame), decoded by ``DataStreamDecoder`` into ``BarMessage``s: orjson parse, checks, RFC 3339
time → ns. Two shapes: 500-symbol batches (a busy minute) and one bar per frame (the worst
case). Best of ``--repeat`` wall-clock runs; run with ``python benchmarks/codec_alpaca.py``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import orjson
from adapters.alpaca.codec import DataStreamDecoder

TARGET = 200_000
MINUTE0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def frames(minutes: int, symbols: int, per_frame: int) -> list[bytes]:
    """``minutes`` × ``symbols`` bars, ``per_frame`` to a frame, with the stream's field set."""
    out: list[bytes] = []
    for m in range(minutes):
        t = (MINUTE0 + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
        bars = [
            {
                "T": "b",
                "S": f"SYM{s:03d}",
                "o": 100.0 + s + m * 0.01,
                "h": 100.3 + s + m * 0.01,
                "l": 99.8 + s + m * 0.01,
                "c": 100.1 + s + m * 0.01,
                "v": 1000 + s,
                "t": t,
                "n": 12,
                "vw": 100.05 + s,
            }
            for s in range(symbols)
        ]
        out.extend(orjson.dumps(bars[i : i + per_frame]) for i in range(0, symbols, per_frame))
    return out


def run(data: list[bytes], repeat: int) -> tuple[int, float]:
    best = float("inf")
    n = 0
    for _ in range(repeat):
        decoder = DataStreamDecoder()
        start = time.perf_counter()
        n = sum(len(decoder.decode(frame)) for frame in data)
        best = min(best, time.perf_counter() - start)
        assert decoder.skipped == 0
    return n, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| frames | bars | best s | bars/s | target | |")
    print("|---|---:|---:|---:|---:|---|")
    for label, data in (
        ("500 bars per frame", frames(400, 500, 500)),
        ("1 bar per frame", frames(400, 500, 1)),
    ):
        n, seconds = run(data, args.repeat)
        rate = n / seconds
        verdict = "PASS" if rate >= TARGET else "MISS"
        print(f"| {label} | {n:,} | {seconds:.3f} | **{rate:,.0f}** | ≥ {TARGET:,} | {verdict} |")


if __name__ == "__main__":
    main()
