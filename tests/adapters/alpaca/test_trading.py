"""The trading codec on the recorded payloads: orders conformed to Alpaca's rules and written as
exact decimal strings, order states, fills keyed by the venue's execution id from both the
stream and REST, the documented trade_updates error frame, and fee activities. Expected values
are read off the payload files and the doc pages by hand."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from adapters.alpaca.rules import EQUITY_PRICE_TICKS, FRACTION_STEP, WHOLE_STEP
from adapters.alpaca.trading import (
    StreamFill,
    TradeStreamControl,
    alpaca_client_order_id,
    decode_activity,
    decode_fee,
    decode_order,
    decode_trade_update,
    encode_order,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.adapters.alpaca.fake_rules import order_refusal
from tests.adapters.alpaca.fake_venue import PAYLOADS, payload
from tradeloop.broker.instruments import InstrumentRules, decimal_of
from tradeloop.errors import ConnectionLostError, OrderError, VenueProtocolError
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import AccountFee, Execution, VenueOrder, VenueOrderState

FRACTIONAL = InstrumentRules(
    "AAPL", qty_step=FRACTION_STEP, price_ticks=EQUITY_PRICE_TICKS, fractional_tif=TimeInForce.DAY
)
WHOLE = InstrumentRules(
    "AAPL",
    qty_step=WHOLE_STEP,
    price_ticks=EQUITY_PRICE_TICKS,
    fractionable=False,
    fractional_tif=TimeInForce.DAY,
)


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


# -- orders -------------------------------------------------------------------------------------


def venue_order(**changes: object) -> VenueOrder:
    fields: dict[str, object] = {
        "client_order_id": "tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b",
        "asset_id": "AAPL",
        "side": Side.BUY,
        "qty": 10.0,
        "order_type": OrderType.LIMIT,
        "limit_price": 126.5,
        "tif": TimeInForce.DAY,
    }
    fields.update(changes)
    return VenueOrder(**fields)  # type: ignore[arg-type]


def test_orders_encode_for_each_type_with_decimal_strings() -> None:
    assert encode_order(venue_order(), FRACTIONAL) == {
        "symbol": "AAPL",
        "qty": "10",
        "side": "buy",
        "type": "limit",
        "time_in_force": "day",
        "client_order_id": "tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b",
        "limit_price": "126.5",
    }
    market = encode_order(
        venue_order(order_type=OrderType.MARKET, side=Side.SELL, qty=0.5), FRACTIONAL
    )
    assert (market["type"], market["side"], market["qty"]) == ("market", "sell", "0.5")
    assert "limit_price" not in market
    assert "stop_price" not in market
    stop = encode_order(
        venue_order(order_type=OrderType.STOP, stop_price=120.25, tif=TimeInForce.GTC), FRACTIONAL
    )
    assert (stop["type"], stop["stop_price"], stop["time_in_force"]) == ("stop", "120.25", "gtc")
    assert "limit_price" not in stop
    both = encode_order(venue_order(order_type=OrderType.STOP_LIMIT, stop_price=127.0), FRACTIONAL)
    assert (both["limit_price"], both["stop_price"]) == ("126.5", "127")
    assert encode_order(venue_order(qty=1e-5), FRACTIONAL)["qty"] == "0.00001"  # never "1e-05"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"limit_price": None}, "needs a limit price"),
        ({"order_type": OrderType.STOP, "stop_price": None}, "needs a stop price"),
        ({"qty": 0.0}, "qty must be a positive"),
        ({"qty": float("nan")}, "qty must be a positive"),
        (
            {"qty": 1e-10},
            r"instrument qty_step: AAPL: quantity 0\.0000000001 rounds to 0 at 0\.000000001$",
        ),
        ({"limit_price": -1.0}, "limit price must be a positive"),
        ({"order_type": OrderType.TRAILING_STOP}, "takes trail_percent or trail_amount, one"),
        ({"tif": TimeInForce.GTD}, "Alpaca has no time in force gtd"),
    ],
)
def test_malformed_orders_are_refused_before_sending(
    changes: dict[str, object], match: str
) -> None:
    with pytest.raises(OrderError, match=match):
        encode_order(venue_order(**changes), FRACTIONAL)


def test_client_ids_that_fit_are_kept_others_map_deterministically_within_48_of_the_charset() -> (
    None
):
    assert alpaca_client_order_id("tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b") == (
        "tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b"
    )
    ids = ["run:1|MLStrategy|AAPL|buy", "x" * 200, "é" * 10, "a b", "a_b", "a-b", "a b " * 30]
    mapped = [alpaca_client_order_id(i) for i in ids]
    for venue_id in mapped:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,48}", venue_id)
    assert mapped == [alpaca_client_order_id(i) for i in ids]  # deterministic
    assert len(set(mapped)) == len(ids)  # "a b" and "a-b" do not collide
    assert mapped[0].startswith("run-1-MLStrategy-AAPL-buy-")
    # pinned: a change of the mapping would orphan orders placed before an upgrade
    assert alpaca_client_order_id("a b") == "a-b-" + mapped[3][-16:]
    assert len(mapped[1]) == 48


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("new", "0", OrderStatus.ACCEPTED),
        ("accepted", "0", OrderStatus.ACCEPTED),
        ("pending_new", "0", OrderStatus.ACCEPTED),
        ("partially_filled", "4", OrderStatus.PARTIALLY_FILLED),
        ("pending_cancel", "4", OrderStatus.PARTIALLY_FILLED),
        ("done_for_day", "0", OrderStatus.ACCEPTED),
        ("filled", "10", OrderStatus.FILLED),
        ("canceled", "4", OrderStatus.CANCELLED),
        ("expired", "0", OrderStatus.EXPIRED),
        ("rejected", "0", OrderStatus.REJECTED),
        ("replaced", "0", OrderStatus.CANCELLED),
        ("something_new", "0", OrderStatus.UNKNOWN),
    ],
)
def test_order_statuses_map(status: str, filled: str, expected: OrderStatus) -> None:
    order = dict(payload("http_post_order.json"), status=status, filled_qty=filled)
    assert decode_order(order).status is expected


def test_order_json_decodes_with_our_client_id_and_fill_figures() -> None:
    state = decode_order(
        payload("http_get_order_partially_filled.json"),
        {"tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b": "ours-1"},
    )
    assert state.client_order_id == "ours-1"
    assert state.venue_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert (state.asset_id, state.side, state.qty) == ("AAPL", Side.BUY, 10.0)
    assert (state.status, state.filled_qty, state.avg_fill_price) == (
        OrderStatus.PARTIALLY_FILLED,
        4.0,
        126.48,
    )


# -- fills --------------------------------------------------------------------------------------


def test_a_partial_fill_update_and_its_fill_activity_are_the_same_execution() -> None:
    update = decode_trade_update(raw("ws_trade_partial_fill.json"))
    assert isinstance(update, StreamFill)
    assert update.key == ("61e69015-8549-4bfd-b9c3-01e75843f47d", Decimal(4))  # order, cum_qty
    activity = decode_activity(
        payload("http_get_activities_fill.json")[0], "tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b"
    )
    expected = Execution(
        trade_id="8e5f6a3c-2d1b-4c9e-a7f0-3b2c1d0e9f8a",  # execution_id = the activity id's uuid
        client_order_id="tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b",
        asset_id="AAPL",
        side=Side.BUY,
        qty=4.0,
        price=126.48,
        commission=0.0,
        ts_ns=1_615_919_885_102_938_000,  # 2021-03-16T18:38:05.102938Z
    )
    assert update.execution == expected
    assert activity == expected  # one trade id from both sources: the broker books it once


def test_trade_stream_control_and_order_events_decode() -> None:
    assert decode_trade_update(raw("ws_trade_authorized.json")) == TradeStreamControl(
        "authorization", True
    )
    refused = decode_trade_update(raw("ws_trade_unauthorized.json"))
    assert refused == TradeStreamControl("authorization", False, "access key verification failed")
    assert decode_trade_update(raw("ws_trade_listening.json")) == TradeStreamControl(
        "listening", True
    )
    new = decode_trade_update(raw("ws_trade_new.json"))
    assert isinstance(new, VenueOrderState)
    assert new.status is OrderStatus.ACCEPTED
    with pytest.raises(VenueProtocolError, match="trade update not understood"):
        decode_trade_update(b'{"stream": "trade_updates", "data": {}}')


# -- venue rules (https://docs.alpaca.markets/docs/fractional-trading, .../orders-at-alpaca) ----


def test_a_fractional_quantity_goes_as_day_even_when_gtc_was_asked() -> None:
    body = encode_order(venue_order(qty=0.5, tif=TimeInForce.GTC), FRACTIONAL)
    assert (body["qty"], body["time_in_force"]) == ("0.5", "day")
    whole = encode_order(venue_order(qty=2.0, tif=TimeInForce.GTC), FRACTIONAL)
    assert (whole["qty"], whole["time_in_force"]) == ("2", "gtc")  # whole shares keep gtc


def test_a_non_fractionable_asset_trades_whole_shares_rounded_toward_zero() -> None:
    with pytest.raises(
        OrderError, match=r"instrument qty_step: AAPL: quantity 0\.5 rounds to 0 at 1$"
    ):
        encode_order(venue_order(qty=0.5), WHOLE)
    assert encode_order(venue_order(qty=3.7), WHOLE)["qty"] == "3"


def test_quantities_round_toward_zero_at_nine_decimals_and_never_go_out_as_float_reprs() -> None:
    assert encode_order(venue_order(qty=0.1 + 0.2), FRACTIONAL)["qty"] == "0.3"  # not ...04
    assert encode_order(venue_order(qty=0.1234567899), FRACTIONAL)["qty"] == "0.123456789"
    assert encode_order(venue_order(qty=2.9999), WHOLE)["qty"] == "2"  # never more than asked


@pytest.mark.parametrize(
    ("side", "order_type", "limit", "stop", "expected"),
    [
        # at or above $1: the cent; a buy limit rounds down, a sell limit up (never worse)
        (Side.BUY, OrderType.LIMIT, 126.505, None, ("126.5", None)),
        (Side.SELL, OrderType.LIMIT, 126.505, None, ("126.51", None)),
        # below $1: $0.0001
        (Side.BUY, OrderType.LIMIT, 0.123456, None, ("0.1234", None)),
        (Side.SELL, OrderType.LIMIT, 0.123456, None, ("0.1235", None)),
        # a stop, like a limit, is never a worse price than asked (tradeloop.broker.instruments):
        # a buy's rounds down, a sell's up, so a protective sell stop triggers at most a cent
        # early, never late. Alpaca's sub-penny rule asks only for the increment, not a
        # direction (https://docs.alpaca.markets/docs/orders-at-alpaca, sub-penny increments)
        (Side.BUY, OrderType.STOP, None, 126.501, (None, "126.5")),
        (Side.SELL, OrderType.STOP, None, 126.509, (None, "126.51")),
        (Side.SELL, OrderType.STOP_LIMIT, 126.001, 126.509, ("126.01", "126.51")),
    ],
)
def test_prices_go_to_the_tick_in_the_safe_direction(
    side: Side, order_type: OrderType, limit: float | None, stop: float | None, expected: tuple
) -> None:
    body = encode_order(
        venue_order(side=side, order_type=order_type, limit_price=limit, stop_price=stop),
        FRACTIONAL,
    )
    assert (body.get("limit_price"), body.get("stop_price")) == expected


@given(
    qty=st.floats(1e-6, 1e5, allow_nan=False),
    price=st.floats(0.0001, 5000, allow_nan=False),
    side=st.sampled_from(Side),
    order_type=st.sampled_from(OrderType),
    tif=st.sampled_from([TimeInForce.DAY, TimeInForce.GTC]),
    fractionable=st.booleans(),
)
def test_every_encoded_order_passes_the_fakes_independent_venue_rules(
    qty: float,
    price: float,
    side: Side,
    order_type: OrderType,
    tif: TimeInForce,
    fractionable: bool,
) -> None:
    """Property: whatever the strategy asks, what goes on the wire is an order Alpaca takes
    (the fake's rules, written separately from the docs), never more than asked, never a
    worse limit."""
    rules = FRACTIONAL if fractionable else WHOLE
    order = venue_order(
        side=side, order_type=order_type, qty=qty, limit_price=price, stop_price=price, tif=tif
    )
    try:
        body = encode_order(order, rules)
    except OrderError as err:
        refused = str(err)
    else:
        refused = ""
    if refused:  # only a quantity below the step, or an order kind not sent, may be refused
        assert "rounds to 0" in refused or order_type is OrderType.TRAILING_STOP, refused
        return
    asset = {"fractionable": fractionable}
    assert order_refusal(body, asset, set()) is None
    assert Decimal(body["qty"]) <= decimal_of(qty)  # the float read at 15 digits, as conform()
    if "limit_price" in body:
        limit = Decimal(body["limit_price"])
        asked = decimal_of(price)  # the float read at 15 digits, as conform() reads it
        assert limit <= asked if side is Side.BUY else limit >= asked


# -- the trade_updates error frame and fees -----------------------------------------------------


def test_the_documented_trade_stream_error_frame_raises_connection_lost_naming_it() -> None:
    with pytest.raises(ConnectionLostError, match=r'"action":"error"\} \(internal server error\)'):
        decode_trade_update(raw("ws_trade_error.json"))


def test_an_unauthorized_listen_decodes_as_a_refusal() -> None:
    refused = decode_trade_update(raw("ws_trade_listen_unauthorized.json"))
    assert refused == TradeStreamControl("authorization", False)


def test_fee_activities_decode_as_the_cores_account_fee_a_charge_positive() -> None:
    """``net_amount`` "-0.02" is cash going out: the core's ``AccountFee`` wants a charge
    positive (``VenueLedger.book_fee`` takes it from cash); the sign was the other way, which
    would have ADDED every regulatory fee to the book's cash."""
    fee, crypto = (decode_fee(row) for row in payload("http_get_activities_fee.json"))
    assert fee == AccountFee(
        fee_id="20210316000000000::7b3c5f0e-1a2d-4e8f-9c0b-6d5e4f3a2b1c",
        amount=0.02,
        ts_ns=1_615_852_800 * 10**9,  # 2021-03-16T00:00:00Z (`date -d 2021-03-16Z +%s`)
        description="FEE AAPL: REG/TAF fee",
    )
    assert crypto.amount == 0.01
    assert crypto.description.startswith("CFEE")
    with pytest.raises(VenueProtocolError, match="not a fee"):
        decode_fee(payload("http_get_activities_fill.json")[0])
