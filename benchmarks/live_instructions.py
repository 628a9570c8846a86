"""Instructions per frame of the live path under callgrind (`benchmarks/live_instructions.py`).

The live bar→order figure (``runtime.py``'s (g), binary frames) is wall clock on a shared VM,
so this counts what a frame costs in instructions instead: one process decodes the first N
binary frames of the 500-asset latency panel (encoded up front, all 600 in every process)
and runs them through ``LiveRuntime`` with (g)'s one-order strategy and a ``PaperBroker``;
the difference between two such processes over the frames between them is the marginal cost
of a frame (decode, intake, the dispatcher step, the order, and what follows it until the
next frame), with start-up, imports and the encoding cancelled out. No socket: the
WebSocket library's share is not in it. ``--base DIR`` counts another tree's ``src`` too. A
first, uncounted process per tree compiles and caches the intake's numba bar check.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from data import OUT  # noqa: E402  (benchmarks/ is a directory of scripts)
from instructions import _callgrind  # noqa: E402

CHILD = """
import asyncio
import numpy as np
from tradeloop import Strategy
from tradeloop.broker.paper import PaperBroker
from tradeloop.events import BarBatchMessage
from tradeloop.runtime.live import LiveRuntime
from tradeloop.stream.codec import decode, encode_binary
from tradeloop.stream.replay import ReplayFeed

async def encoded():
    feed = ReplayFeed({path!r}, signal_columns=["score"], batched=True)
    return [encode_binary(m) async for m in feed.messages() if isinstance(m, BarBatchMessage)]

frames = asyncio.run(encoded())

class Frames:
    async def messages(self):
        for frame in frames[:{n}]:
            yield decode(frame)

class OneOrder(Strategy):
    def on_timestamp_batch(self, batch, context):
        self.buy(batch.asset_ids[int(np.argmax(batch.signals["score"]))], 1)

asyncio.run(LiveRuntime(Frames(), OneOrder(), PaperBroker(1e9)).run())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=500)
    parser.add_argument("--base", type=Path, help="another tree whose src/ to count as well")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        return
    path = OUT / "panel_500x600.parquet"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/runtime.py --quick once to make it")
    trees: dict[str, Path | None] = {"this tree": None}
    if args.base is not None:
        trees[f"base {args.base}"] = args.base / "src"
    for name, src in trees.items():
        # not counted: the first process compiles the intake's numba bar check and caches
        # it; the counted ones then load it alike (else the difference is negative)
        _callgrind(CHILD.format(path=str(path), n=1), src)
        counts = [
            _callgrind(CHILD.format(path=str(path), n=n), src) for n in (args.small, args.large)
        ]
        per_frame = (counts[1] - counts[0]) / (args.large - args.small)
        print(f"{name}: {per_frame:,.0f} instructions per frame of 500 assets", flush=True)


if __name__ == "__main__":
    main()
