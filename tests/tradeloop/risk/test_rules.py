"""Each rule's levels from a RiskContext, worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloop import ConfigError, UnknownSignalError
from tradeloop.risk import (
    DynamicTrailingStop,
    RiskContext,
    StopLoss,
    TakeProfit,
    TimeBasedExit,
    VolatilityScaledStopLoss,
)

T = datetime(2024, 1, 1, tzinfo=UTC)


def ctx(**overrides: Any) -> RiskContext:
    values: dict[str, Any] = {
        "asset_id": "X",
        "timestamp": T,
        "qty": 10.0,
        "entry_price": 100.0,
        "entry_time": T,
        "bars_held": 3,
        "high_water_mark": 100.0,
        "low_water_mark": 100.0,
        "last_close": 100.0,
        "features": {"atr": 2.0},
        "entry_features": {"atr": 1.5},
        "context": {},
    }
    values.update(overrides)
    return RiskContext(**values)


def test_stop_loss_and_take_profit_levels_long_and_short() -> None:
    assert StopLoss(0.05).evaluate(ctx()).stop_price == pytest.approx(95.0)
    assert StopLoss(0.05).evaluate(ctx(qty=-10.0)).stop_price == pytest.approx(105.0)
    assert TakeProfit(0.10).evaluate(ctx()).take_profit_price == pytest.approx(110.0)
    assert TakeProfit(0.10).evaluate(ctx(qty=-10.0)).take_profit_price == pytest.approx(90.0)


def test_volatility_stop_uses_the_feature_known_at_entry() -> None:
    decision = VolatilityScaledStopLoss(atr_multiplier=2.0).evaluate(ctx())
    assert decision.stop_price == pytest.approx(100.0 - 2 * 1.5)  # entry ATR 1.5, not 2.0
    short = VolatilityScaledStopLoss(atr_multiplier=2.0).evaluate(ctx(qty=-1.0))
    assert short.stop_price == pytest.approx(103.0)


def test_volatility_stop_missing_value_holds_and_is_counted() -> None:
    rule = VolatilityScaledStopLoss()
    decision = rule.evaluate(ctx(entry_features={"atr": float("nan")}))
    assert decision.stop_price is None
    assert rule.missing == 1


def test_volatility_stop_unknown_key_raises_listing_features() -> None:
    with pytest.raises(UnknownSignalError, match=r"no feature 'atr_20'.*features are: atr"):
        VolatilityScaledStopLoss(volatility_key="atr_20").evaluate(ctx())


def test_trailing_stop_narrows_with_gain() -> None:
    rule = DynamicTrailingStop(initial_trail_pct=0.05, tighten_rate=0.5, min_trail_pct=0.02)
    # no gain: 5 % under the high-water mark
    assert rule.evaluate(ctx()).stop_price == pytest.approx(95.0)
    # best gain 4 %: trail 5 % − 0.5 × 4 % = 3 % under 104
    assert rule.evaluate(ctx(high_water_mark=104.0)).stop_price == pytest.approx(104 * 0.97)
    # best gain 20 %: the trail bottoms at 2 %
    assert rule.evaluate(ctx(high_water_mark=120.0)).stop_price == pytest.approx(120 * 0.98)
    # a short trails above the low-water mark
    assert rule.evaluate(ctx(qty=-5.0, low_water_mark=90.0)).stop_price == pytest.approx(
        90 * (1 + max(0.02, 0.05 - 0.5 * 0.10))
    )


@given(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=30))
def test_trailing_stop_only_tightens_as_the_high_water_mark_rises(moves: list[float]) -> None:
    rule = DynamicTrailingStop(initial_trail_pct=0.08, tighten_rate=0.7, min_trail_pct=0.01)
    hwm, previous = 100.0, 0.0
    for move in moves:
        hwm = max(hwm, hwm * move)  # a high-water mark never falls
        stop = rule.evaluate(ctx(high_water_mark=hwm)).stop_price
        assert stop is not None
        assert stop >= previous - 1e-9
        previous = stop


def test_time_exit_fires_at_max_bars() -> None:
    rule = TimeBasedExit(max_bars=3)
    assert rule.evaluate(ctx(bars_held=2)).exit_now is False
    assert rule.evaluate(ctx(bars_held=3)).exit_now is True


@pytest.mark.parametrize(
    "build",
    [
        lambda: StopLoss(0.0),
        lambda: StopLoss(1.5),
        lambda: DynamicTrailingStop(initial_trail_pct=0.01, min_trail_pct=0.02),
        lambda: TimeBasedExit(0),
        lambda: VolatilityScaledStopLoss(atr_multiplier=-1),
    ],
)
def test_rules_with_impossible_settings_raise_config_error(build: Any) -> None:
    with pytest.raises(ConfigError):
        build()
