"""examples/momentum.py (the README walk's strategy): its rule, recomputed bar by bar."""

from __future__ import annotations

import sys
from collections import deque

import polars as pl

from tests.examples.running import DATA, EXAMPLES
from tradeloop import Engine


def test_momentum_enters_above_its_mean_and_exits_below_it() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from momentum import Momentum
    finally:
        sys.path.remove(str(EXAMPLES))
    # one asset, so 45 % of equity is always affordable and every decision becomes a fill
    bars = (
        pl.read_parquet(DATA / "sample.parquet")
        .filter(pl.col("asset_id") == "AAA")
        .select("timestamp", "asset_id", "open", "high", "low", "close", "volume")
    )
    result = Engine(feed=bars, strategy=Momentum(lookback=20, threshold=0.01)).run()

    # the rule by hand, per asset in time order: decisions on a bar's close fill at the next
    # bar's open, so the decision times are each fill's previous bar of that asset
    expected: list[tuple[str, object, str]] = []
    for (asset,), rows in bars.sort("timestamp").group_by("asset_id", maintain_order=True):
        closes: deque[float] = deque(maxlen=20)
        long = False
        times = rows["timestamp"].to_list()
        for i, close in enumerate(rows["close"].to_list()):
            closes.append(close)
            if len(closes) < 20 or i + 1 == len(times):
                continue
            mean = sum(closes) / 20
            if not long and close > mean * 1.01:
                expected.append((str(asset), times[i + 1], "buy"))
                long = True
            elif long and close < mean:
                expected.append((str(asset), times[i + 1], "sell"))
                long = False
    fills = result.fills.sort("asset_id", "timestamp")
    got = [
        (a, t.replace(tzinfo=None), s)
        for a, t, s in fills.select("asset_id", "timestamp", "side").rows()
    ]
    assert got == sorted(expected, key=lambda e: (e[0], e[1]))
    assert len(got) > 20
