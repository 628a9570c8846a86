"""Commission and slippage models, each against numbers worked by hand."""

from __future__ import annotations

import math

import pytest

from tradeloop import ConfigError
from tradeloop.broker.costs import (
    BpsSlippage,
    FixedCommission,
    NoSlippage,
    PercentCommission,
    PerShareCommission,
    VolumeShareSlippage,
    as_commission,
    as_slippage,
)


def test_percent_commission_is_rate_times_notional() -> None:
    # 100 shares × 50.0 = 5,000 notional; 10 bps of it = 5.0
    assert PercentCommission(0.001).commission(100, 50.0) == pytest.approx(5.0)


def test_per_share_commission_applies_minimum_for_small_fills() -> None:
    model = PerShareCommission(per_share=0.005, minimum=1.0)
    assert model.commission(100, 50.0) == 1.0  # 0.50 is below the 1.00 minimum
    assert model.commission(1_000, 50.0) == pytest.approx(5.0)  # 1,000 × 0.005


def test_fixed_commission_ignores_size() -> None:
    assert FixedCommission(4.95).commission(1, 10.0) == FixedCommission(4.95).commission(9e6, 1.0)


def test_bps_slippage_moves_price_against_the_trader() -> None:
    model = BpsSlippage(10)  # 0.10 %
    assert model.price(+1, 200.0, 5, math.nan) == pytest.approx(200.2)
    assert model.price(-1, 200.0, 5, math.nan) == pytest.approx(199.8)


def test_volume_share_slippage_caps_quantity_and_charges_square_impact() -> None:
    model = VolumeShareSlippage(volume_limit=0.1, price_impact=0.1)
    assert model.max_qty(1_000.0) == pytest.approx(100.0)
    assert model.max_qty(0.0) == 0.0
    assert model.max_qty(math.nan) == 0.0
    # 100 of 1,000 is a 10 % share: impact 0.1 × 0.1² = 0.001 -> 50 × 1.001
    assert model.price(+1, 50.0, 100, 1_000.0) == pytest.approx(50.05)
    assert model.price(-1, 50.0, 100, 1_000.0) == pytest.approx(49.95)


def test_float_shorthands_build_the_documented_models() -> None:
    assert as_commission(0.002) == PercentCommission(0.002)
    assert as_slippage(0.0005) == BpsSlippage(5.0)
    assert as_slippage(None) == NoSlippage()
    assert as_commission(None).commission(10, 10.0) == 0.0


@pytest.mark.parametrize(
    "build",
    [
        lambda: PercentCommission(-0.001),
        lambda: PerShareCommission(0.01, minimum=-1),
        lambda: BpsSlippage(math.nan),
        lambda: VolumeShareSlippage(volume_limit=1.5),
        lambda: as_commission("ten bps"),  # type: ignore[arg-type]
    ],
)
def test_cost_models_with_impossible_settings_raise_config_error(build: object) -> None:
    with pytest.raises(ConfigError):
        build()  # type: ignore[operator]
