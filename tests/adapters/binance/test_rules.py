"""exchangeInfo filters → InstrumentRules, and orders conformed to them as exact decimal strings
(the docs' filter formats: payloads/http_get_exchange_info.json)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from adapters.binance.rules import conformed_params, rules_from_exchange_info
from hypothesis import given
from hypothesis import strategies as st

from tests.adapters.binance.recorded import payload
from tradeloop.broker.instruments import InstrumentRules, decimal_of
from tradeloop.errors import ConfigError, OrderRejectedError, VenueProtocolError
from tradeloop.events import OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrder

INFO = payload("http_get_exchange_info.json")
BTC = rules_from_exchange_info(INFO, ["BTCUSDT"])["BTCUSDT"]
WIRE_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")  # Binance's decimal parameter


def order(**changes: object) -> VenueOrder:
    base: dict[str, object] = {
        "client_order_id": "tl-1",
        "asset_id": "BTCUSDT",
        "side": Side.BUY,
        "qty": 0.01,
        "order_type": OrderType.MARKET,
    }
    return VenueOrder(**{**base, **changes})  # type: ignore[arg-type]


def test_rules_from_exchange_info_reads_every_filter_zero_is_off() -> None:
    d = Decimal
    assert (
        InstrumentRules(
            asset_id="BTCUSDT",
            qty_step=d("0.00001"),
            min_qty=d("0.00001"),
            max_qty=d("9000"),
            market_qty_step=None,  # MARKET_LOT_SIZE stepSize/minQty "0.00000000": LOT_SIZE's apply
            market_min_qty=None,
            market_max_qty=d("120"),
            price_ticks=((d(0), d("0.01")),),
            min_price=d("0.01"),
            max_price=d("1000000"),
            min_notional=d("5"),
            min_notional_applies_to_market=True,
            max_notional=d("9000000"),
        )
        == BTC
    )


def test_rules_from_exchange_info_older_min_notional_filter() -> None:
    ltc = rules_from_exchange_info(INFO, ["LTCBTC"])["LTCBTC"]
    assert (ltc.min_notional, ltc.min_notional_applies_to_market, ltc.max_notional) == (
        Decimal("0.0001"),
        True,
        None,
    )


def test_rules_from_exchange_info_unknown_symbol_is_a_config_error_with_a_fix() -> None:
    with pytest.raises(ConfigError, match=r"DOGEUSDT is not in Binance's exchangeInfo.*Fix"):
        rules_from_exchange_info(INFO, ["BTCUSDT", "DOGEUSDT"])


def test_rules_from_exchange_info_malformed_filter_names_it() -> None:
    info = payload("http_get_exchange_info.json")
    info["symbols"][0]["filters"][1]["stepSize"] = 0.001
    with pytest.raises(VenueProtocolError, match=r"BTCUSDT LOT_SIZE: stepSize is 0.001"):
        rules_from_exchange_info(info, ["BTCUSDT"])


def test_conformed_params_float_sum_goes_out_as_its_decimal() -> None:
    sent = conformed_params(order(qty=0.1 + 0.2), "tl-1", BTC)
    assert repr(0.1 + 0.2) == "0.30000000000000004"
    assert sent.params == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.3",
        "newClientOrderId": "tl-1",
        "newOrderRespType": "RESULT",
    }
    assert sent.dust == 0  # read at 15 significant digits, as conform() reads it: no dust


def test_conformed_params_nine_decimals_round_down_to_the_step() -> None:
    # 0.123456789 BTC (more precision than BTC's 8 decimals) → 0.12345 at the 0.00001 step
    sent = conformed_params(order(qty=0.123456789), "c", BTC)
    assert (sent.params["quantity"], sent.dust) == ("0.12345", Decimal("0.000006789"))


def test_conformed_params_fee_reduced_position_closes_leaving_dust() -> None:
    # bought 0.01 BTC, 0.075 % fee taken in BTC: 0.0099925 held; the sell rounds to 0.00999
    sent = conformed_params(order(side=Side.SELL, qty=0.0099925), "c", BTC)
    assert (sent.params["side"], sent.params["quantity"]) == ("SELL", "0.00999")
    assert sent.dust == Decimal("0.0000025")
    dust_only = order(side=Side.SELL, qty=float(sent.dust))
    with pytest.raises(
        OrderRejectedError, match=r"instrument qty_step: .* rounds to 0 at 0\.00001$"
    ):
        conformed_params(dust_only, "c", BTC)


def test_conformed_params_prices_round_to_the_tick_in_the_safe_direction() -> None:
    buy = conformed_params(order(order_type=OrderType.LIMIT, limit_price=25000.555), "c", BTC)
    sell = conformed_params(
        order(order_type=OrderType.LIMIT, side=Side.SELL, limit_price=25000.551), "c", BTC
    )
    assert (buy.params["price"], buy.params["timeInForce"]) == ("25000.55", "GTC")
    assert sell.params["price"] == "25000.56"  # a sell never asks less than told
    stop = conformed_params(
        order(
            order_type=OrderType.STOP_LIMIT,
            side=Side.SELL,
            qty=1.0,
            limit_price=99.001,
            stop_price=100.009,
        ),
        "c",
        BTC,
    )
    # never a worse price than asked (tradeloop.broker.instruments): a sell's stop and limit
    # both round up, so the stop triggers at most a tick early and its limit never crosses
    # it. Binance's PRICE_FILTER asks only that (price - minPrice) % tickSize == 0
    # (https://developers.binance.com/docs/binance-spot-api-docs/filters#price_filter): the
    # direction is ours to choose.
    assert (stop.params["type"], stop.params["stopPrice"], stop.params["price"]) == (
        "STOP_LOSS_LIMIT",
        "100.01",
        "99.01",
    )
    buy_stop = conformed_params(
        order(order_type=OrderType.STOP, side=Side.BUY, qty=1.0, stop_price=100.009), "c", BTC
    )
    assert buy_stop.params["stopPrice"] == "100"  # a buy's stop rounds down
    stop_market = conformed_params(order(order_type=OrderType.STOP, stop_price=500.0), "c", BTC)
    assert (stop_market.params["type"], "price" in stop_market.params) == ("STOP_LOSS", False)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"order_type": OrderType.LIMIT, "limit_price": 1e5, "tif": TimeInForce.DAY}, "use GTC"),
        ({"order_type": OrderType.LIMIT}, "limit_price None"),
        ({"order_type": OrderType.STOP}, "stop_price None"),
        ({"order_type": OrderType.LIMIT, "limit_price": float("nan")}, "limit_price nan"),
        ({"order_type": OrderType.TRAILING_STOP}, "does not send trailing_stop orders yet"),
        ({"tif": TimeInForce.GTD}, "no good-till-date orders"),
        ({"qty": 0.0}, "must be positive"),
        ({"qty": float("inf")}, "must be positive"),
        (
            {"qty": 0.000001},
            "instrument qty_step: BTCUSDT: quantity 0.000001 rounds to 0 at 0.00001",
        ),
        (
            {"order_type": OrderType.LIMIT, "limit_price": 1.0, "qty": 9001.0},
            "max_qty: BTCUSDT: quantity 9001 > 9000",
        ),
        ({"qty": 121.0}, "market_max_qty: BTCUSDT: quantity 121 > 120"),  # MARKET_LOT_SIZE maxQty
        (
            {"order_type": OrderType.LIMIT, "limit_price": 100.0, "qty": 0.01},
            "min_notional: BTCUSDT",
        ),
        (
            {"order_type": OrderType.LIMIT, "limit_price": 2e6},
            "max_price: BTCUSDT: limit price 2000000 > 1000000",
        ),
    ],
)
def test_conformed_params_impossible_orders_are_refused_naming_the_rule(
    changes: dict[str, object], why: str
) -> None:
    with pytest.raises(OrderRejectedError, match=re.escape(why)):
        conformed_params(order(**changes), "c", BTC)


@given(st.floats(min_value=0.00001, max_value=120.0, allow_nan=False, allow_infinity=False))
def test_conformed_quantity_is_on_the_step_never_more_than_asked(qty: float) -> None:
    sent = conformed_params(order(qty=qty), "c", BTC).params["quantity"]
    amount = Decimal(sent)
    assert WIRE_DECIMAL.match(sent)
    assert -amount.as_tuple().exponent <= 8  # type: ignore[operator]  # BTC's precision
    assert amount % Decimal("0.00001") == 0
    # "asked" is the float read at 15 significant digits (conform()'s rule: 10.999999999999986
    # is 11, float noise, not a quantity anyone asked for)
    assert 0 <= decimal_of(qty) - amount < Decimal("0.00001")
