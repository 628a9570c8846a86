"""The sans-I/O codec against the docs' shapes (recorded payloads) and the docs' test vector."""

from __future__ import annotations

import re

import orjson
import pytest
from adapters.binance.codec import (
    ClientIds,
    ClockSkewError,
    ServerShutdown,
    UnknownOrderError,
    decode_klines,
    decode_stream_frame,
    error_for,
    execution_from_report,
    execution_from_trade,
    order_params,
    order_state,
    server_offset_ms,
    sign,
    signed_query,
    snapshot_from,
    venue_client_id,
)

from tests.adapters.binance.fake_binance import PAYLOADS, payload
from tradeloop.errors import (
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.events import BarMessage, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrder

# the HMAC example of Binance's "SIGNED endpoint examples for POST /api/v3/order"
DOCS_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOCS_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOCS_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_sign_docs_test_vector_matches() -> None:
    assert sign(DOCS_SECRET, DOCS_PAYLOAD) == DOCS_SIGNATURE


def test_signed_query_docs_request_signs_the_exact_encoded_query() -> None:
    params = {
        "symbol": "LTCBTC",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": 1,
        "price": 0.1,
    }
    query = signed_query(params, DOCS_SECRET, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert query == f"{DOCS_PAYLOAD}&signature={DOCS_SIGNATURE}"


def test_signed_query_percent_encodes_before_signing() -> None:
    query = signed_query({"symbol": "A B"}, "s", timestamp_ms=1, recv_window_ms=2)
    assert query.startswith("symbol=A%20B&recvWindow=2&timestamp=1&signature=")
    assert query.endswith(sign("s", "symbol=A%20B&recvWindow=2&timestamp=1"))


def test_decode_stream_frame_closed_kline_is_a_bar_with_exact_prices() -> None:
    bar = decode_stream_frame((PAYLOADS / "ws_kline_closed.json").read_bytes())
    # the recorded frame's k: t=1672515780000 ms, o/h/l/c/v as strings
    assert bar == BarMessage(
        "BTCUSDT", 1672515780000 * 1_000_000, 16541.77, 16543.5, 16539.2, 16542.36, 15.021
    )


def test_decode_stream_frame_open_kline_subscribe_answer_are_not_bars() -> None:
    assert decode_stream_frame((PAYLOADS / "ws_kline.json").read_bytes()) is None
    assert decode_stream_frame((PAYLOADS / "ws_subscribe_result.json").read_bytes()) is None


def test_decode_stream_frame_server_shutdown_is_reported_wrapped_or_not() -> None:
    raw = payload("ws_server_shutdown.json")
    assert decode_stream_frame(orjson.dumps(raw)) == ServerShutdown(1672515842000)
    wrapped = {"stream": "btcusdt@kline_1m", "data": raw}
    assert decode_stream_frame(orjson.dumps(wrapped)) == ServerShutdown(1672515842000)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("c", "abc", "k.c is 'abc'"),
        ("h", 16543.5, "k.h is 16543.5, not a decimal string"),
        ("x", "true", "k.x is 'true'"),
        ("t", "1672515780000", "t is '1672515780000', not an integer"),
        ("l", "16600.0", "o/h/l/c are impossible"),
        ("v", "NaN", "k.v is 'NaN', not a finite price"),
    ],
)
def test_decode_stream_frame_malformed_kline_names_the_field(
    field: str, value: object, named: str
) -> None:
    frame = payload("ws_kline_closed.json")
    frame["data"]["k"][field] = value
    with pytest.raises(VenueProtocolError, match=re.escape(named)):
        decode_stream_frame(orjson.dumps(frame))


def test_decode_stream_frame_not_json_is_a_protocol_error() -> None:
    with pytest.raises(VenueProtocolError, match="not JSON"):
        decode_stream_frame(b"{oops")


def test_decode_klines_keeps_only_klines_closed_before_the_cut() -> None:
    rows = payload("http_get_klines.json")
    # the third row closes at 1672515839999: still forming at that instant
    bars = decode_klines(rows, "BTCUSDT", closed_before_ms=1672515839999)
    assert [b.ts_ns // 1_000_000 for b in bars] == [1672515660000, 1672515720000]
    assert (bars[1].open, bars[1].high, bars[1].low, bars[1].close) == (
        16539.99,
        16542.0,
        16538.5,
        16541.77,
    )
    assert len(decode_klines(rows, "BTCUSDT", closed_before_ms=2**62)) == 3


def test_decode_klines_bad_row_names_row_and_field() -> None:
    rows = payload("http_get_klines.json")
    rows[1][4] = None
    with pytest.raises(VenueProtocolError, match=r"row 1 .*c is None"):
        decode_klines(rows, "BTCUSDT", closed_before_ms=2**62)


def test_venue_client_id_journal_ids_pass_unchanged() -> None:
    journal_id = "tl" + "0123456789abcdef0123456789abcd"  # the journal's shape: tl + 30 hex
    assert venue_client_id(journal_id) == journal_id


@pytest.mark.parametrize(
    "ours", ["a" * 37, "run/1:strategy#2", "ünïcode", "", "x" * 200, "has space"]
)
def test_venue_client_id_maps_others_into_charset_deterministically(ours: str) -> None:
    venue_id = venue_client_id(ours)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,36}", venue_id)
    assert venue_id == venue_client_id(ours)  # a restart sends the same id
    ids = ClientIds()
    assert ids.to_ours(ids.to_venue(ours)) == ours


def test_venue_client_id_distinct_ids_stay_distinct() -> None:
    ids = {venue_client_id(f"order number {n}") for n in range(1000)}
    assert len(ids) == 1000


def _order(**changes: object) -> VenueOrder:
    base: dict[str, object] = {
        "client_order_id": "tl-1",
        "asset_id": "BTCUSDT",
        "side": Side.BUY,
        "qty": 0.00001,
        "order_type": OrderType.MARKET,
    }
    return VenueOrder(**{**base, **changes})  # type: ignore[arg-type]


def test_order_params_market_has_plain_decimal_quantity() -> None:
    params = order_params(_order(), "tl-1")
    assert params == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.00001",  # never 1e-05
        "newClientOrderId": "tl-1",
        "newOrderRespType": "RESULT",
    }


def test_order_params_limit_and_stop_limit_carry_prices_and_gtc() -> None:
    limit = order_params(_order(order_type=OrderType.LIMIT, limit_price=25000.5, qty=2.0), "c")
    assert (limit["type"], limit["price"], limit["timeInForce"]) == ("LIMIT", "25000.5", "GTC")
    stop = order_params(
        _order(order_type=OrderType.STOP_LIMIT, side=Side.SELL, limit_price=99.0, stop_price=100.0),
        "c",
    )
    assert (stop["type"], stop["side"], stop["stopPrice"], stop["price"]) == (
        "STOP_LOSS_LIMIT",
        "SELL",
        "100.0",
        "99.0",
    )
    assert order_params(_order(order_type=OrderType.STOP, stop_price=5.0), "c")["type"] == (
        "STOP_LOSS"
    )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"order_type": OrderType.LIMIT, "limit_price": 1.0, "tif": TimeInForce.DAY}, "use GTC"),
        ({"order_type": OrderType.LIMIT}, "limit_price None"),
        ({"order_type": OrderType.STOP}, "stop_price None"),
        ({"qty": 0.0}, "must be positive"),
    ],
)
def test_order_params_impossible_orders_are_refused_before_sending(
    changes: dict[str, object], why: str
) -> None:
    with pytest.raises(OrderRejectedError, match=why):
        order_params(_order(**changes), "c")


@pytest.mark.parametrize(
    ("binance", "ours"),
    [
        ("NEW", OrderStatus.ACCEPTED),
        ("PARTIALLY_FILLED", OrderStatus.PARTIALLY_FILLED),
        ("FILLED", OrderStatus.FILLED),
        ("CANCELED", OrderStatus.CANCELLED),
        ("REJECTED", OrderStatus.REJECTED),
        ("EXPIRED", OrderStatus.EXPIRED),
        ("EXPIRED_IN_MATCH", OrderStatus.EXPIRED),
    ],
)
def test_order_state_maps_every_status(binance: str, ours: OrderStatus) -> None:
    order = payload("http_get_order.json")
    order["status"] = binance
    assert order_state(order, ClientIds()).status == ours


def test_order_state_post_answer_has_fill_average() -> None:
    state = order_state(payload("http_post_order.json"), ClientIds())
    # executedQty 10, cummulativeQuoteQty 10 → average 1.0
    assert (state.client_order_id, state.venue_order_id, state.side) == (
        "6gCrw2kRUAF9CvJDGP16IP",
        "28",
        Side.SELL,
    )
    assert (state.qty, state.filled_qty, state.avg_fill_price) == (10.0, 10.0, 1.0)


def test_order_state_cancel_answer_uses_the_original_client_id() -> None:
    state = order_state(payload("http_delete_order.json"), ClientIds())
    assert state.client_order_id == "myOrder1"  # not the cancel's own "cancelMyOrder1"
    assert state.status == OrderStatus.CANCELLED


def test_execution_from_report_trade_is_one_fill_with_unique_trade_id() -> None:
    frame = payload("ws_api_execution_report.json")
    fill = execution_from_report(frame["event"], ClientIds(), "USDT", "BTC")
    assert fill is not None
    assert (fill.trade_id, fill.client_order_id, fill.side) == (
        "BTCUSDT:12345",
        "mUvoqJxFIILMdfAW5iGSOW",
        Side.BUY,
    )
    # the fee, 0.0004 BTC, was taken from the 0.4 BTC bought: the account got 0.3996 BTC and
    # paid 0.4 × 0.1026441 USDT, which the book shows as 0.3996 at the price + the fee's value
    assert (fill.qty, fill.price, fill.ts_ns) == (
        pytest.approx(0.3996),
        0.1026441,
        1499405658657 * 1_000_000,
    )
    assert fill.commission == pytest.approx(0.0004 * 0.1026441)
    assert fill.qty * fill.price + fill.commission == pytest.approx(0.4 * 0.1026441)
    assert not fill.order_done  # X = PARTIALLY_FILLED


def test_a_fee_in_the_quote_or_a_third_asset_leaves_the_quantity_whole() -> None:
    event = payload("ws_api_execution_report.json")["event"]
    event.update(N="USDT", X="FILLED")
    fill = execution_from_report(event, ClientIds(), "USDT", "BTC")
    assert fill is not None
    assert (fill.qty, fill.commission, fill.order_done) == (0.4, 0.0004, True)
    event["N"] = "BNB"
    fill = execution_from_report(event, ClientIds(), "USDT", "BTC")
    assert fill is not None
    assert (fill.qty, fill.commission) == (0.4, 0.0004)  # BNB units, passed through


@pytest.mark.parametrize("kind", ["NEW", "CANCELED", "EXPIRED", "REJECTED"])
def test_execution_from_report_non_trade_updates_are_not_fills(kind: str) -> None:
    event = payload("ws_api_execution_report.json")["event"]
    event["x"] = kind
    assert execution_from_report(event, ClientIds(), "USDT", "BTC") is None


def test_execution_from_trade_row_uses_trade_id_side_and_given_client_id() -> None:
    row = payload("http_get_my_trades.json")[0]
    fill = execution_from_trade(row, "tl-7", "USDT", "BTC")
    assert (fill.trade_id, fill.client_order_id, fill.side, fill.qty) == (
        "BTCUSDT:28457",
        "tl-7",
        Side.BUY,
        12.0,
    )
    assert fill.commission == 10.1  # charged in BNB: passed through in its own units


def test_snapshot_cash_is_quote_free_plus_locked_positions_are_base_balances() -> None:
    account = payload("http_get_account.json")
    account["balances"].append({"asset": "USDT", "free": "900.5", "locked": "99.5"})
    snapshot = snapshot_from(
        account, payload("http_get_open_orders.json"), ["BTCUSDT", "ETHUSDT"], "USDT", ClientIds()
    )
    assert snapshot.cash == 1000.0
    assert snapshot.positions == {"BTCUSDT": 4723846.89208129, "ETHUSDT": 0.0}
    assert [o.client_order_id for o in snapshot.open_orders] == ["myOrder1"]


@pytest.mark.parametrize(
    ("status", "code", "order_request", "kind"),
    [
        (400, -2010, True, OrderRejectedError),
        (400, -1013, True, OrderRejectedError),
        (400, -1021, True, ClockSkewError),
        (400, -2013, False, UnknownOrderError),
        (400, -2011, True, UnknownOrderError),
        (400, -1022, False, VenueProtocolError),
        (503, None, True, OutcomeUnknownError),
        (408, -1007, True, OutcomeUnknownError),
        (429, -1003, True, RateLimitError),
        (418, -1003, False, RateLimitError),
    ],
)
def test_error_for_maps_binance_codes(
    status: int, code: int | None, order_request: bool, kind: type[Exception]
) -> None:
    body = orjson.dumps({"code": code, "msg": "m"}) if code is not None else b"<html>"
    error = error_for(status, body, what="req", retry_after="7", order_request=order_request)
    assert type(error) is kind
    assert f"HTTP {status}" in str(error)


def test_error_for_rate_limit_carries_retry_after() -> None:
    error = error_for(429, b"{}", what="r", retry_after="7", order_request=True)
    assert isinstance(error, RateLimitError)
    assert error.retry_after_s == 7.0
    banned = error_for(418, b"{}", what="r", retry_after=None, order_request=True)
    assert isinstance(banned, RateLimitError)
    assert banned.retry_after_s == 120.0
    assert "banned" in str(banned)


def test_server_offset_uses_the_request_midpoint() -> None:
    # sent at 1000, answered at 1100 → the server read its clock at ~1050
    assert server_offset_ms(server_ms=6050, sent_ms=1000, received_ms=1100) == 5000
