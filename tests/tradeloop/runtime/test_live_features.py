"""Feature providers in the live runtime: sync and async functions join the bar's signals and
the context; a failure or a timeout skips that timestamp's decisions, and is counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from tests.conftest import Messages
from tradeloop import MarketEvent, Strategy
from tradeloop.broker.paper import PaperBroker
from tradeloop.data.features import CallableFeatureProvider, PrecomputedFeatureProvider
from tradeloop.runtime.live import LiveRuntime
from tradeloop.stream.replay import ReplayFeed

START = datetime(2024, 1, 1, tzinfo=UTC)


def bars(n: int = 6) -> pl.DataFrame:
    rows = []
    for k in range(n):
        for asset, base in (("A", 100.0), ("B", 50.0)):
            price = base + k
            rows.append((START + timedelta(days=k), asset, price, price + 1, price - 1, price))
    return pl.DataFrame(
        rows, schema=["timestamp", "asset_id", "open", "high", "low", "close"], orient="row"
    )


def score(asset: str, when: datetime) -> float:
    return (when - START).days * 10 + (1 if asset == "A" else 2)


class Recorder(Strategy):
    """Records what it saw; buys 1 A on the first bar so a fill is due on the second."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str, float, Any]] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        day = (event.timestamp - START).days
        self.seen.append((day, event.asset_id, event.signals["score"], context.get("regime")))
        if day == 0 and event.asset_id == "A":
            self.buy("A", 1)


async def run(provider: Any) -> tuple[LiveRuntime, Recorder, PaperBroker]:
    strategy, broker = Recorder(), PaperBroker(10_000.0)
    runtime = LiveRuntime(ReplayFeed(bars()), strategy, broker, features=provider)
    await runtime.run()
    return runtime, strategy, broker


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_callable_features_join_signals_and_context(kind: str) -> None:
    if kind == "sync":

        def asset_fn(asset: str, when: datetime) -> dict[str, float]:
            return {"score": score(asset, when)}

        def market_fn(when: datetime) -> dict[str, Any]:
            return {"regime": "bull" if when.day % 2 else "bear"}

    else:

        async def asset_fn(asset: str, when: datetime) -> dict[str, float]:  # type: ignore[misc]
            await asyncio.sleep(0.001)
            return {"score": score(asset, when)}

        async def market_fn(when: datetime) -> dict[str, Any]:  # type: ignore[misc]
            return {"regime": "bull" if when.day % 2 else "bear"}

    runtime, strategy, _ = await run(CallableFeatureProvider(asset_fn, market_fn))
    assert runtime.feature_skips == 0
    expected = [
        (k, a, k * 10 + (1 if a == "A" else 2), "bull" if (k + 1) % 2 else "bear")
        for k in range(6)
        for a in ("A", "B")
    ]
    assert strategy.seen == expected


async def test_a_slow_async_feature_skips_the_timestamp_but_orders_still_fill() -> None:
    async def asset_fn(asset: str, when: datetime) -> dict[str, float]:
        if (when - START).days == 1:
            await asyncio.sleep(5)  # the model server hangs on day 1
        return {"score": score(asset, when)}

    runtime, strategy, broker = await run(CallableFeatureProvider(asset_fn, timeout_s=0.05))
    assert runtime.feature_skips == 1
    assert sorted({day for day, *_ in strategy.seen}) == [0, 2, 3, 4, 5]  # day 1 undecided
    # the order decided on day 0 still filled at day 1's open (101), with day 1's bar index
    assert [(f.asset_id, f.qty, f.price, f.bar_index) for f in broker.fills] == [("A", 1, 101, 1)]
    assert broker.marks == {"A": 105.0, "B": 55.0}


@pytest.mark.parametrize(
    ("asset_fn", "why"),
    [
        (lambda a, w: 1 / 0 if (w - START).days == 3 else {"score": 1.0}, "raises"),
        (lambda a, w: [1.0] if (w - START).days == 3 else {"score": 1.0}, "not a dict"),
    ],
)
async def test_a_failing_feature_function_skips_that_timestamp(asset_fn: Any, why: str) -> None:
    runtime, strategy, _ = await run(CallableFeatureProvider(asset_fn))
    assert runtime.feature_skips == 1, why
    assert sorted({day for day, *_ in strategy.seen}) == [0, 1, 2, 4, 5]


async def test_precomputed_features_are_looked_up_as_of_each_timestamp() -> None:
    rows = [
        (START + timedelta(days=k), a, float(score(a, START + timedelta(days=k))))
        for k in range(0, 6, 2)
        for a in ("A", "B")
    ]  # every other day: as-of carries over
    rows += [(START + timedelta(days=k), None, None) for k in range(6)]
    frame = pl.DataFrame(rows, schema=["timestamp", "asset_id", "score"], orient="row")
    frame = frame.with_columns(
        regime=pl.when(pl.col("asset_id").is_null()).then(pl.lit(1.0)).otherwise(None)
    )
    _, strategy, _ = await run(PrecomputedFeatureProvider(frame))
    assert [(d, a, s) for d, a, s, _ in strategy.seen] == [
        (k, a, (k - k % 2) * 10 + (1 if a == "A" else 2)) for k in range(6) for a in ("A", "B")
    ]
    assert {r for *_, r in strategy.seen} == {1.0}


async def test_context_in_force_survives_a_restart() -> None:
    from tradeloop.events import BarMessage, ContextMessage

    day = 86_400 * 10**9
    t0 = int(START.timestamp()) * 10**9

    def bar(k: int) -> BarMessage:
        return BarMessage("A", t0 + k * day, 10.0, 10.0, 10.0, 10.0, 1.0, {"score": 1.0})

    first = Recorder()
    before = LiveRuntime(
        Messages([ContextMessage("regime", t0, "calm"), bar(0), bar(1), bar(2)]),
        first,
        PaperBroker(),
    )
    await before.run()
    saved = json.loads(json.dumps(before.state()))  # as the journal keeps it
    assert saved["context"] == {"regime": [t0, "calm"]}
    # the restarted stream (a backfill from the last handled bar) does not repeat the context
    after = Recorder()
    again = LiveRuntime(
        Messages([bar(2), bar(3)]),
        after,
        PaperBroker(),
        resume={**saved, "last_ts_ns": t0 + 2 * day},
    )
    await again.run()
    assert after.seen == [(3, "A", 1.0, "calm")]


class BuysDayOne(Strategy):
    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        if (event.timestamp - START).days == 1:
            self.buy(event.asset_id, 10)


def test_risk_sharing_an_async_provider_reads_its_features_over_a_stream() -> None:
    """An ATR stop whose ATR comes from an async model function: over a stream the risk rule
    reads the joined column (it used to call the provider itself and got a coroutine), and
    the fills equal a replay of the same rule over the plain-function twin.

    By hand: buys of 10 decided on day 1 fill at day 2's open (A 102, B 52); ATR 0.5 puts the
    stops at 101.5 / 51.5, inside day 2's own range (low 101 / 51): filled at the stop."""
    from tradeloop import Engine, RiskManager
    from tradeloop.risk import VolatilityScaledStopLoss

    def atr(asset: str, when: datetime) -> dict[str, float]:
        return {"atr": 0.5}

    async def atr_async(asset: str, when: datetime) -> dict[str, float]:
        await asyncio.sleep(0)
        return atr(asset, when)

    def engine(provider: CallableFeatureProvider, stream: bool) -> Any:
        risk = RiskManager(feature_provider=provider)
        risk.add_rule(VolatilityScaledStopLoss(atr_multiplier=1.0, volatility_key="atr"))
        feed: Any = ReplayFeed(bars()) if stream else bars()
        return Engine(feed, BuysDayOne(), risk=risk).run()

    stream = engine(CallableFeatureProvider(atr_async, asset_features=["atr"]), stream=True)
    replay = engine(CallableFeatureProvider(atr, asset_features=["atr"]), stream=False)
    columns = ["timestamp", "asset_id", "side", "qty", "price", "reason"]
    assert stream.fills.select(columns).equals(replay.fills.select(columns))
    exits = stream.fills.filter(pl.col("reason") == "volatility_stop")
    assert exits.select("asset_id", "price").rows() == [("A", 101.5), ("B", 51.5)]
