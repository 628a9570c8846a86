"""Feature providers: as-of lookups, market-wide rows, and one provider feeding a run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl
import pytest

from tests.conftest import bars, day
from tradeloop import (
    CallableFeatureProvider,
    ConfigError,
    DataError,
    Engine,
    MarketEvent,
    PrecomputedFeatureProvider,
    Strategy,
)


def features() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [day(0), day(0), day(1), day(0), day(1)],
            "asset_id": ["A", "B", "A", None, None],
            "ml_score": [0.85, 0.75, 0.90, None, None],
            "atr": [2.5, 3.1, 2.6, None, None],
            "vix": [None, None, None, 18.5, 31.0],
        }
    )


def test_precomputed_provider_splits_asset_and_market_features() -> None:
    provider = PrecomputedFeatureProvider(features())
    assert provider.asset_features == ["ml_score", "atr"]
    assert provider.market_features == ["vix"]
    assert provider.get_features("A", day(1)) == {"ml_score": 0.90, "atr": 2.6}
    # B has no row on day 1: as-of gives its day-0 row, never nothing-or-zero
    assert provider.get_features("B", day(1)) == {"ml_score": 0.75, "atr": 3.1}
    assert provider.get_features("A", datetime(2000, 1, 1)) == {}  # noqa: DTZ001
    assert provider.get_features("ZZZ", day(1)) == {}
    assert provider.get_market_features(day(1))["vix"] == 31.0


def test_precomputed_provider_duplicate_rows_are_refused() -> None:
    frame = pl.concat([features(), features().head(1)])
    with pytest.raises(DataError, match="appears twice"):
        PrecomputedFeatureProvider(frame)


class Recorder(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, float], Any, Any]] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.seen.append(
            (event.asset_id, dict(event.signals), context.get("vix"), event.context.get("vix"))
        )


def test_engine_with_precomputed_provider_fills_signals_and_context() -> None:
    frame = bars(
        [
            (0, "A", 10, 11, 9, 10),
            (0, "B", 5, 6, 4, 5),
            (1, "A", 10, 11, 9, 10),
            (1, "B", 5, 6, 4, 5),
        ]
    )
    strategy = Recorder()
    Engine(feed=frame, strategy=strategy, features=PrecomputedFeatureProvider(features())).run()
    assert strategy.seen == [
        ("A", {"ml_score": 0.85, "atr": 2.5}, 18.5, 18.5),
        ("B", {"ml_score": 0.75, "atr": 3.1}, 18.5, 18.5),
        ("A", {"ml_score": 0.90, "atr": 2.6}, 31.0, 31.0),
        ("B", {"ml_score": 0.75, "atr": 3.1}, 31.0, 31.0),
    ]


def test_engine_with_callable_provider_calls_market_fn_once_per_timestamp() -> None:
    calls: list[str] = []

    def asset_fn(asset_id: str, timestamp: datetime) -> dict[str, float]:
        calls.append(f"asset {asset_id}")
        return {"score": float(timestamp.day)}

    def market_fn(timestamp: datetime) -> dict[str, float]:
        calls.append("market")
        return {"vix": 20.0}

    frame = bars([(0, "A", 10, 11, 9, 10), (0, "B", 5, 6, 4, 5), (1, "A", 10, 11, 9, 10)])
    strategy = Recorder()
    Engine(
        feed=frame, strategy=strategy, features=CallableFeatureProvider(asset_fn, market_fn)
    ).run()
    assert calls == ["market", "asset A", "asset B", "market", "asset A"]
    assert [s[1]["score"] for s in strategy.seen] == [1.0, 1.0, 2.0]
    assert [s[2] for s in strategy.seen] == [20.0, 20.0, 20.0]


def test_callable_provider_refuses_async_functions_in_a_backtest() -> None:
    async def fetch(asset_id: str, timestamp: datetime) -> dict[str, float]:
        return {}

    frame = bars([(0, "A", 10, 11, 9, 10)])
    provider = CallableFeatureProvider(fetch)
    assert provider.is_async
    with pytest.raises(ConfigError, match="async feature functions run in paper and live"):
        Engine(feed=frame, strategy=Recorder(), features=provider).run()


def test_feature_that_clashes_with_bar_column_is_refused() -> None:
    frame = bars([(0, "A", 10, 11, 9, 10)], {"atr": [1.0]})
    with pytest.raises(DataError, match="also columns of the bar data"):
        Engine(
            feed=frame, strategy=Recorder(), features=PrecomputedFeatureProvider(features())
        ).run()


def test_callable_feature_function_taking_the_bar_scores_the_bar_it_is_handed() -> None:
    """A model of the bar alone: (close - low) / (high - low). Day 0 A: (10 - 9) / 2 = 0.5;
    B: (5 - 4) / 2 = 0.5; day 1 A closes at its high: 1.0. Replay and stream agree."""
    import asyncio

    from tradeloop import PaperBroker, ReplayFeed

    handed: list[dict[str, float]] = []

    def strength(asset_id: str, timestamp: datetime, bar: dict[str, float]) -> dict[str, float]:
        handed.append(dict(bar))
        return {"strength": (bar["close"] - bar["low"]) / (bar["high"] - bar["low"])}

    async def strength_async(asset_id: str, when: datetime, bar: dict[str, float]) -> Any:
        await asyncio.sleep(0)
        return strength(asset_id, when, bar)

    frame = bars([(0, "A", 10, 11, 9, 10), (0, "B", 5, 6, 4, 5), (1, "A", 10, 11, 9, 11)])
    replay, stream = Recorder(), Recorder()
    Engine(feed=frame, strategy=replay, features=CallableFeatureProvider(strength)).run()
    assert handed[0] == {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 1e6}
    Engine(
        ReplayFeed(frame), stream, PaperBroker(), features=CallableFeatureProvider(strength_async)
    ).run()
    assert [s[1]["strength"] for s in replay.seen] == [0.5, 0.5, 1.0]
    assert [s[1] for s in stream.seen] == [s[1] for s in replay.seen]
