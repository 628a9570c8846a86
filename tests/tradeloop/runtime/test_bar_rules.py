"""One set of bar rules for every source: a replay refuses a bad bar (DataError naming the
rule and the row), a stream skips the same bar, counts it under the rule and logs it, and goes
on exactly as a replay of the data without that bar."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from typing import Any

import polars as pl
import pytest
import structlog

from tests.conftest import Messages, bars, day
from tradeloop import DataError, Engine, MarketEvent, PaperBroker, Strategy
from tradeloop.clock import utc_ns
from tradeloop.data.validation import BAR_RULES
from tradeloop.events import BarMessage, EndMessage, Message
from tradeloop.runtime.live import LiveRuntime

GOOD = [
    (0, "A", 10, 11, 9, 10),
    (0, "B", 20, 21, 19, 20),
    (1, "A", 10, 11, 9, 10.5),
    (1, "B", 20, 21, 19, 20.5),
    (2, "A", 11, 12, 10, 11),
    (2, "B", 21, 22, 20, 21),
]
# (bar of B on day 1 replaced by..., the rule it breaks)
BAD = {
    "close_above_high": ((20, 21, 19, 22, 1e6), "outside_range"),
    "open_below_low": ((18, 21, 19, 20, 1e6), "outside_range"),
    "high_below_low": ((20, 19, 21, 20, 1e6), "high_below_low"),
    "zero_low": ((20, 21, 0.0, 20, 1e6), "low_not_positive"),
    "negative_close": ((20, 21, 19, -1.0, 1e6), "close_not_positive"),
    "nan_open": ((math.nan, 21, 19, 20, 1e6), "open_not_finite"),
    "inf_high": ((20, math.inf, 19, 20, 1e6), "high_not_finite"),
    "negative_volume": ((20, 21, 19, 20, -5.0), "negative_volume"),
}


class Buys(Strategy):
    """Buys 1 of each asset on day 1 and records every bar it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, float]] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.seen.append((str(event.timestamp.date()), event.asset_id, event.close))
        if event.timestamp == day(1):
            self.buy(event.asset_id, 1)


def with_bad(values: tuple[float, ...]) -> list[tuple[Any, ...]]:
    rows = list(GOOD)
    rows[3] = (1, "B", *values)
    return rows


@pytest.mark.parametrize("case", sorted(BAD))
def test_bar_rules_a_replay_refuses_the_bar_a_stream_skips_and_counts_it(case: str) -> None:
    values, rule_name = BAD[case]
    rule = next(r for r in BAR_RULES if r.name == rule_name)
    rows = with_bad(values)
    with pytest.raises(DataError, match=r"row 3 \(asset B, .*" + re.escape(rule.what)):
        Engine(feed=bars(rows), strategy=Buys()).run()

    messages: list[Message] = [
        BarMessage(r[1], utc_ns(day(r[0])), *map(float, r[2:6]), float(r[6] if len(r) > 6 else 1e6))
        for r in rows
    ]
    stream = Buys()
    runtime = LiveRuntime(Messages([*messages, EndMessage()]), stream, PaperBroker(100_000))
    with structlog.testing.capture_logs() as logs:
        asyncio.run(runtime.run())
    assert runtime.invalid_bars == {rule_name: 1}
    refused = [e for e in logs if e["event"] == "bar_refused"]
    assert [(e["rule"], e["asset"], e["ts"][:10]) for e in refused] == [
        (rule_name, "B", "2024-01-02")
    ]

    clean = [r for i, r in enumerate(rows) if i != 3]
    replay = Buys()
    expected = Engine(feed=bars(clean), strategy=replay).run()
    assert stream.seen == replay.seen  # the bad bar never reached the strategy
    fills = pl.DataFrame(
        [(f.asset_id, f.price, f.ts_ns) for f in runtime.broker.fills],
        schema=["asset_id", "price", "ts_ns"],
        orient="row",
    )
    assert (
        fills.rows()
        == expected.fills.select("asset_id", "price", pl.col("timestamp").dt.epoch("ns")).rows()
    )
