"""conform(): every rule of InstrumentRules, one case each (expected values worked out by hand
from the venues' documented formulas), and the properties that hold for any order:
never more quantity than asked, never a worse price, the result on the step and the tick."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloop.broker.instruments import (
    Conformed,
    InstrumentRules,
    Refused,
    conform,
    decimal_of,
    decimal_text,
    rules_from_table,
)
from tradeloop.errors import ConfigError
from tradeloop.events import OrderType, Side, TimeInForce

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)
GTC, DAY = TimeInForce.GTC, TimeInForce.DAY
# Binance BTCUSDT's filters as exchangeInfo lists them (LOT_SIZE, PRICE_FILTER, NOTIONAL)
BTC = InstrumentRules(
    "BTCUSDT",
    qty_step=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    price_ticks=((D(0), D("0.01")),),
    min_price=D("0.01"),
    max_price=D("1000000"),
    min_notional=D("5"),
    max_notional=D("9000000"),
)
# Alpaca: $0.01 at or above $1, $0.0001 below; fractional orders must be day orders
AAPL = InstrumentRules(
    "AAPL", price_ticks=((D(0), D("0.0001")), (D(1), D("0.01"))), fractional_tif=DAY
)


def ok(result: Conformed | str) -> Conformed:
    assert isinstance(result, Conformed), result
    return result


def refused(result: Conformed | str) -> Refused:
    assert isinstance(result, Refused), result
    return result


def test_decimal_of_reads_a_float_as_its_fifteen_digits() -> None:
    assert decimal_of(0.1 + 0.2) == D("0.3")  # 0.30000000000000004 is binary noise
    assert decimal_of(0.7 - 0.4) == D("0.3")  # 0.29999999999999993 too
    assert decimal_of(0.0099925) == D("0.0099925")
    assert decimal_of(1e-20) == D("1E-20")


@pytest.mark.parametrize(
    ("value", "text"),
    [(D("0.30000"), "0.3"), (D("1E+1"), "10"), (D("1E-8"), "0.00000001"), (D("-0"), "0")],
)
def test_decimal_text_has_no_exponent_and_no_trailing_zeros(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text


def test_float_noise_quantity_goes_out_as_the_decimal_asked() -> None:
    result = ok(conform(BTC, BUY, MARKET, 0.1 + 0.2, None, None, GTC, 30_000.0))
    assert decimal_text(result.qty) == "0.3"
    assert result.changes == ()


def test_fee_reduced_position_sells_down_to_the_step_leaving_dust() -> None:
    # 0.01 BTC bought, 0.1 % fee in BTC: 0.0099925 held; the step is 0.00001
    result = ok(conform(BTC, SELL, MARKET, 0.0099925, None, None, GTC, 30_000.0))
    assert result.qty == D("0.00999")  # 0.0000025 BTC of dust stays
    assert result.changes == ("qty 0.0099925 -> 0.00999",)


def test_step_grid_is_anchored_at_the_minimum() -> None:
    # Binance: (quantity - minQty) % stepSize == 0; min 0.15, step 0.1 → 0.15, 0.25, 0.35...
    rules = InstrumentRules("X", qty_step=D("0.1"), min_qty=D("0.15"))
    assert ok(conform(rules, BUY, LIMIT, 0.33, 1.0, None, GTC, None)).qty == D("0.25")


def test_market_order_must_sit_on_both_lot_grids() -> None:
    rules = InstrumentRules(
        "X", qty_step=D("0.001"), market_qty_step=D("0.01"), market_max_qty=D("5")
    )
    assert ok(conform(rules, BUY, MARKET, 1.2345, None, None, GTC, 1.0)).qty == D("1.23")
    assert ok(conform(rules, BUY, LIMIT, 1.2345, 1.0, None, GTC, None)).qty == D("1.234")
    too_big = refused(conform(rules, BUY, MARKET, 6, None, None, GTC, 1.0))
    assert too_big.rule == "market_max_qty"
    assert ok(conform(rules, BUY, LIMIT, 6, 1.0, None, GTC, None)).qty == D(6)


@pytest.mark.parametrize(
    ("qty", "rule", "message"),
    [
        (0.000001, "qty_step", "instrument qty_step: BTCUSDT: quantity 0.000001 rounds to 0"),
        (9000.5, "max_qty", "instrument max_qty: BTCUSDT: quantity 9000.5 > 9000"),
    ],
)
def test_quantity_off_the_lot_rules_is_refused_naming_the_rule(
    qty: float, rule: str, message: str
) -> None:
    result = refused(conform(BTC, BUY, LIMIT, qty, 1.0, None, GTC, None))
    assert result.rule == rule
    assert result.startswith(message)


def test_quantity_below_the_minimum_is_refused() -> None:
    rules = InstrumentRules("X", qty_step=D("0.01"), min_qty=D("0.1"))
    result = refused(conform(rules, BUY, LIMIT, 0.099, 1.0, None, GTC, None))
    assert result.rule == "min_qty"
    assert result == "instrument min_qty: X: quantity 0.099 < 0.1"


@pytest.mark.parametrize(
    ("side", "kind", "limit", "stop", "want_limit", "want_stop"),
    [
        (BUY, LIMIT, 100.004, None, "100", None),  # a buy never pays more
        (SELL, LIMIT, 100.004, None, "100.01", None),  # a sell never takes less
        (SELL, STOP, None, 99.995, None, "100"),  # a protective sell stop: a tick earlier
        (BUY, STOP, None, 100.005, None, "100"),  # a buy stop (short cover): earlier too
        (SELL, STOP_LIMIT, 100.004, 100.004, "100.01", "100.01"),  # limit never crosses stop
        (BUY, STOP_LIMIT, 100.009, 100.001, "100", "100"),
        (BUY, LIMIT, 100.0, None, "100", None),  # already on the tick: untouched
    ],
)
def test_prices_round_to_the_tick_never_worse_than_asked(
    side: Side,
    kind: OrderType,
    limit: float | None,
    stop: float | None,
    want_limit: str | None,
    want_stop: str | None,
) -> None:
    result = ok(conform(BTC, side, kind, 1, limit, stop, GTC, None))
    assert (None if result.limit_price is None else decimal_text(result.limit_price)) == want_limit
    assert (None if result.stop_price is None else decimal_text(result.stop_price)) == want_stop


def test_tiered_ticks_use_the_tick_of_the_price_and_its_rounding() -> None:
    # Alpaca: below $1 the tick is $0.0001, at or above $1 it is $0.01
    assert ok(conform(AAPL, BUY, LIMIT, 1, 0.56789, None, GTC, None)).limit_price == D("0.5678")
    assert ok(conform(AAPL, SELL, LIMIT, 1, 0.56781, None, GTC, None)).limit_price == D("0.5679")
    # a sell at 0.99995 rounds up into the $0.01 range: 1.0000 is on that grid too
    assert ok(conform(AAPL, SELL, LIMIT, 1, 0.99995, None, GTC, None)).limit_price == D("1")
    assert ok(conform(AAPL, BUY, LIMIT, 1, 187.456, None, GTC, None)).limit_price == D("187.45")


def test_rounding_into_a_coarser_tick_is_rounded_again_there() -> None:
    rules = InstrumentRules("X", price_ticks=((D(0), D("0.0001")), (D("1.005"), D("0.01"))))
    # 1.00499 → up on 0.0001 → 1.005, which is in the 0.01 range and not on it → 1.01
    assert ok(conform(rules, SELL, LIMIT, 1, 1.00499, None, GTC, None)).limit_price == D("1.01")


@pytest.mark.parametrize(
    ("price", "rule"),
    [(0.001, "price_ticks"), (2_000_000.0, "max_price")],
)
def test_prices_outside_the_price_filter_are_refused(price: float, rule: str) -> None:
    assert refused(conform(BTC, BUY, LIMIT, 1, price, None, GTC, None)).rule == rule


def test_min_price_is_checked_on_the_rounded_price() -> None:
    rules = InstrumentRules("X", price_ticks=((D(0), D("0.01")),), min_price=D("0.05"))
    assert refused(conform(rules, BUY, LIMIT, 1, 0.049, None, GTC, None)).rule == "min_price"


def test_notional_is_checked_at_the_limit_stop_or_reference_price() -> None:
    # 0.0001 BTC × 30,000 = 3 USDT < 5
    result = refused(conform(BTC, BUY, MARKET, 0.0001, None, None, GTC, 30_000.0))
    assert result == "instrument min_notional: BTCUSDT: notional 3.00000000 < 5"
    assert refused(conform(BTC, BUY, LIMIT, 0.0001, 30_000.0, None, GTC, None)).rule == (
        "min_notional"
    )
    assert refused(conform(BTC, SELL, STOP, 0.0001, None, 30_000.0, GTC, None)).rule == (
        "min_notional"
    )
    assert ok(conform(BTC, BUY, MARKET, 0.0002, None, None, GTC, 30_000.0)).qty == D("0.0002")
    assert refused(conform(BTC, BUY, LIMIT, 400, 30_000.0, None, GTC, None)).rule == (
        "max_notional"
    )
    # a market order with no price known yet: the notional cannot be checked here
    assert ok(conform(BTC, BUY, MARKET, 0.0001, None, None, GTC, None)).qty == D("0.0001")


def test_notional_limits_can_exempt_market_orders() -> None:
    # Binance NOTIONAL applyMinToMarket=false / applyMaxToMarket=false
    rules = InstrumentRules(
        "X",
        min_notional=D(10),
        min_notional_applies_to_market=False,
        max_notional=D(100),
        max_notional_applies_to_market=False,
    )
    assert ok(conform(rules, BUY, MARKET, 1, None, None, GTC, 5.0)).qty == D(1)
    assert ok(conform(rules, BUY, MARKET, 1, None, None, GTC, 500.0)).qty == D(1)
    assert refused(conform(rules, BUY, LIMIT, 1, 5.0, None, GTC, None)).rule == "min_notional"
    assert ok(conform(rules, BUY, STOP, 1, None, 500.0, GTC, None)).qty == D(1)  # a market


def test_fractional_quantity_where_the_venue_has_none_is_refused() -> None:
    rules = InstrumentRules("BRK.A", fractionable=False)
    result = refused(conform(rules, BUY, MARKET, 0.5, None, None, GTC, 100.0))
    assert result.rule == "fractionable"
    assert ok(conform(rules, BUY, MARKET, 2, None, None, GTC, 100.0)).qty == D(2)


def test_fractional_quantity_takes_the_only_time_in_force_allowed() -> None:
    result = ok(conform(AAPL, BUY, MARKET, 0.5, None, None, GTC, 180.0))
    assert result.tif is DAY
    assert result.changes == ("tif gtc -> day (fractional)",)
    assert ok(conform(AAPL, BUY, MARKET, 2, None, None, GTC, 180.0)).tif is GTC  # whole: as asked


def test_refused_is_a_plain_string_for_callers_that_check_str() -> None:
    result = conform(BTC, BUY, LIMIT, 0.000001, 1.0, None, GTC, None)
    assert isinstance(result, str)
    assert str(result).startswith("instrument qty_step: ")


def test_rules_from_table_reads_decimal_strings_exactly() -> None:
    table = {
        "qty_step": "0.00001",
        "min_qty": 0.001,
        "tick_size": "0.01",
        "min_notional": 5,
        "fractionable": True,
        "fractional_tif": "day",
    }
    rules = rules_from_table("BTCUSDT", table, "instruments.BTCUSDT")
    assert rules == InstrumentRules(
        "BTCUSDT",
        qty_step=D("0.00001"),
        min_qty=D("0.001"),
        price_ticks=((D(0), D("0.01")),),
        min_notional=D(5),
        fractional_tif=DAY,
    )
    tiered = rules_from_table("AAPL", {"price_ticks": [["0", "0.0001"], ["1", "0.01"]]}, "i.AAPL")
    assert tiered.price_ticks == AAPL.price_ticks


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"qty_stepp": "1"}, "unknown key instruments.X.qty_stepp"),
        ({"qty_step": "-1"}, "instruments.X.qty_step = '-1' must be a positive number"),
        ({"qty_step": "abc"}, 'should be a decimal string such as "0.001"'),
        ({"fractionable": "yes"}, "instruments.X.fractionable = 'yes' should be true or false"),
        ({"fractional_tif": "week"}, "instruments.X.fractional_tif = 'week': use one of"),
        ({"price_ticks": [["1", "0.01"], ["0", "0.0001"]]}, "the from_price values must rise"),
        ({"tick_size": "0.01", "price_ticks": [["0", "0.01"]]}, "not both"),
    ],
)
def test_rules_from_table_names_a_bad_key_or_value(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rules_from_table("X", table, "instruments.X")
    assert message in str(caught.value)


# -- properties --------------------------------------------------------------------------------

_STEPS = ["0.00001", "0.001", "0.01", "0.1", "0.5", "1"]
_TICKS = ["0.0001", "0.01", "0.05", "0.5"]


@st.composite
def _rules(draw: st.DrawFn) -> InstrumentRules:
    step = D(draw(st.sampled_from(_STEPS)))
    low = step * draw(st.integers(1, 5))
    tick = D(draw(st.sampled_from(_TICKS)))
    return InstrumentRules("X", qty_step=step, min_qty=low, price_ticks=((D(0), tick),))


_QTY = st.floats(1e-6, 1e4, allow_nan=False, allow_infinity=False)
_PRICE = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)


@given(rules=_rules(), qty=_QTY, side=st.sampled_from([BUY, SELL]))
def test_property_quantity_is_the_largest_step_at_or_below_what_was_asked(
    rules: InstrumentRules, qty: float, side: Side
) -> None:
    result = conform(rules, side, MARKET, qty, None, None, GTC, None)
    asked = decimal_of(qty)
    assert rules.qty_step is not None
    assert rules.min_qty is not None
    if isinstance(result, Refused):
        assert asked < rules.min_qty  # the only reason with these rules
        return
    assert isinstance(result, Conformed)
    assert result.qty <= asked  # never more than asked
    assert (result.qty - rules.min_qty) % rules.qty_step == 0  # on the venue's grid
    assert result.qty + rules.qty_step > asked  # and not a step lower than it had to be


@given(rules=_rules(), price=_PRICE, side=st.sampled_from([BUY, SELL]))
def test_property_prices_are_on_the_tick_within_a_tick_and_never_worse(
    rules: InstrumentRules, price: float, side: Side
) -> None:
    rules = replace(rules, qty_step=None, min_qty=None)  # prices only
    result = conform(rules, side, STOP_LIMIT, 1, price, price, GTC, None)
    asked = decimal_of(price)
    tick = rules.price_ticks[0][1]
    if isinstance(result, Refused):
        assert result.rule == "price_ticks"  # a buy below the first tick rounds to 0
        assert side is BUY
        assert asked < tick
        return
    assert isinstance(result, Conformed)
    for got in (result.limit_price, result.stop_price):
        assert got is not None
        assert got % tick == 0
        assert abs(got - asked) < tick
        assert got <= asked if side is BUY else got >= asked
