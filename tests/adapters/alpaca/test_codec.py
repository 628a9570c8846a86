"""The sans-I/O codec, path by path, on the recorded payloads. Expected values are read off the
payload files by hand (epoch seconds of 2021-02-22T19:15:00Z: 1614021300, from `date -d`)."""

from __future__ import annotations

import json
import re

import pytest
from adapters.alpaca.codec import (
    AlpacaAuthError,
    Authenticated,
    AuthTimeoutError,
    BarCorrection,
    Connected,
    ConnectionLimitError,
    CorrectionHold,
    DataStreamDecoder,
    StreamError,
    Subscribed,
    SubscriptionLimitError,
    TradeStreamControl,
    alpaca_client_order_id,
    decode_activity,
    decode_bars_page,
    decode_order,
    decode_trade_update,
    encode_order,
    rfc3339,
    stream_error,
    ts_ns_from_rfc3339,
)

from tests.adapters.alpaca.fake_venue import PAYLOADS, payload
from tradeloop.errors import ConfigError, ConnectionLostError, OrderError, VenueProtocolError
from tradeloop.events import BarMessage, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import Execution, VenueOrder, VenueOrderState

T0 = 1_614_021_300 * 10**9  # 2021-02-22T19:15:00Z
MINUTE = 60 * 10**9


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def test_bar_batch_decodes_to_bar_messages_with_exact_values() -> None:
    events = DataStreamDecoder().decode(raw("ws_bars_batch.json"))
    assert events == [
        BarMessage("SPY", T0, 388.985, 389.13, 388.975, 389.12, 49378.0),
        BarMessage("AAPL", T0, 126.625, 126.7, 126.59, 126.66, 12004.0),
    ]


def test_updated_bar_decodes_to_a_correction() -> None:
    (event,) = DataStreamDecoder().decode(raw("ws_updated_bar.json"))
    assert event == BarCorrection(BarMessage("SPY", T0, 388.985, 389.2, 388.975, 389.18, 49912.0))


def test_control_messages_decode_to_events() -> None:
    decoder = DataStreamDecoder()
    assert decoder.decode(raw("ws_connected.json")) == [Connected()]
    assert decoder.decode(raw("ws_authenticated.json")) == [Authenticated()]
    assert decoder.decode(raw("ws_subscription.json")) == [
        Subscribed(("AAPL", "SPY"), ("AAPL", "SPY"))
    ]
    assert decoder.decode(raw("ws_error_406.json")) == [
        StreamError(406, "connection limit exceeded")
    ]


@pytest.mark.parametrize(
    ("code", "error", "fatal"),
    [
        (406, ConnectionLimitError, False),
        (404, AuthTimeoutError, False),
        (402, AlpacaAuthError, True),
        (401, AlpacaAuthError, True),
        (405, SubscriptionLimitError, True),
        (409, SubscriptionLimitError, True),
        (500, ConnectionLostError, False),
        (400, VenueProtocolError, False),
    ],
)
def test_stream_error_codes_map_onto_the_error_tree(
    code: int, error: type[Exception], fatal: bool
) -> None:
    err = stream_error(code, "msg")
    assert type(err) is error
    assert isinstance(err, ConfigError) is fatal  # the supervisor only retries ConnectionLost
    assert str(code) in str(err)


def test_auth_failure_error_says_how_to_fix_it() -> None:
    assert "APCA_API_SECRET_KEY" in str(stream_error(402, "auth failed"))


def test_malformed_items_are_skipped_and_counted_the_rest_of_the_batch_survives() -> None:
    good = {"T": "b", "S": "X", "o": 1, "h": 2, "l": 1, "c": 2, "v": 5, "t": "2021-02-22T19:15:00Z"}
    frame = json.dumps(
        [
            dict(good, h=0.5),  # high below low
            dict(good, c="2"),  # a string price
            dict(good, t="yesterday"),
            {"T": "b", "S": "X"},  # missing fields
            good,
        ]
    )
    decoder = DataStreamDecoder()
    assert decoder.decode(frame) == [BarMessage("X", T0, 1.0, 2.0, 1.0, 2.0, 5.0)]
    assert decoder.skipped == 4
    assert decoder.decode(b"not json") == []
    assert decoder.skipped == 5


def test_rfc3339_round_trips_with_nanoseconds_and_offsets() -> None:
    assert ts_ns_from_rfc3339("2021-02-22T19:15:00Z") == T0
    assert ts_ns_from_rfc3339("2021-02-22T19:15:00.000000123Z") == T0 + 123
    assert ts_ns_from_rfc3339("2021-02-22T19:15:00.5Z") == T0 + 500_000_000
    assert ts_ns_from_rfc3339("2021-02-22T14:15:00-05:00") == T0
    assert rfc3339(T0) == "2021-02-22T19:15:00Z"
    assert rfc3339(T0 + 123) == "2021-02-22T19:15:00.000000123Z"
    with pytest.raises(VenueProtocolError, match="RFC 3339"):
        ts_ns_from_rfc3339("2021-02-22 nonsense")


def test_bars_pages_decode_in_time_then_symbol_order_with_the_next_token() -> None:
    bars, token = decode_bars_page(raw("http_get_stocks_bars_page1.json"))
    assert token == "U1BZfE18MjAyMS0wMi0yMlQxOToxNTowMFo="
    assert [(b.ts_ns, b.asset_id) for b in bars] == [
        (T0, "AAPL"),
        (T0, "SPY"),
        (T0 + MINUTE, "AAPL"),
    ]
    assert bars[1] == BarMessage("SPY", T0, 388.985, 389.2, 388.975, 389.18, 49912.0)
    bars, token = decode_bars_page(raw("http_get_stocks_bars_page2.json"))
    assert token is None
    assert bars == [BarMessage("SPY", T0 + MINUTE, 389.18, 389.3, 389.1, 389.25, 41022.0)]
    assert decode_bars_page(b'{"bars": null, "next_page_token": null}') == ([], None)


# -- corrections --------------------------------------------------------------------------------


def bar(asset: str, minute: int, close: float = 10.0) -> BarMessage:
    return BarMessage(asset, T0 + minute * MINUTE, 10.0, 12.0, 9.0, close, 100.0)


def test_a_correction_within_the_grace_replaces_the_bar_before_it_is_published() -> None:
    hold = CorrectionHold(grace_s=2.0)
    assert hold.add(bar("A", 0), now_s=100.0) == []
    assert hold.add(bar("B", 0), now_s=100.1) == []
    assert hold.correct(BarCorrection(bar("A", 0, close=11.0)), now_s=101.0) == ([], False)
    assert hold.due(now_s=101.9) == []  # 1.9 s after the first bar of the minute: still held
    assert hold.due(now_s=102.0) == [bar("A", 0, close=11.0), bar("B", 0)]
    assert (hold.applied, hold.late) == (1, 0)


def test_a_correction_after_publication_is_late_and_changes_nothing() -> None:
    hold = CorrectionHold(grace_s=2.0)
    hold.add(bar("A", 0), now_s=100.0)
    assert hold.due(now_s=102.5) == [bar("A", 0)]
    assert hold.correct(BarCorrection(bar("A", 0, close=11.0)), now_s=130.0) == ([], True)
    assert (hold.applied, hold.late) == (0, 1)


def test_the_next_minutes_first_bar_releases_the_held_minute_at_once() -> None:
    hold = CorrectionHold(grace_s=30.0)
    hold.add(bar("A", 0), 0.0)
    hold.add(bar("B", 0), 0.0)
    assert hold.add(bar("A", 1), 1.0) == [bar("A", 0), bar("B", 0)]
    assert hold.deadline == 31.0
    assert hold.release() == [bar("A", 1)]


def test_zero_grace_publishes_on_arrival_and_every_correction_is_late() -> None:
    hold = CorrectionHold(grace_s=0.0)
    assert hold.add(bar("A", 0), 0.0) == [bar("A", 0)]
    assert hold.correct(BarCorrection(bar("A", 0, 11.0)), 0.0) == ([], True)


def test_a_correction_of_a_minute_never_seen_is_that_minutes_bar() -> None:
    hold = CorrectionHold(grace_s=1.0)
    assert hold.correct(BarCorrection(bar("A", 5, 11.0)), 0.0) == ([], False)
    assert hold.due(1.0) == [bar("A", 5, 11.0)]


def test_a_late_plain_bar_passes_through_for_the_runtime_to_count() -> None:
    hold = CorrectionHold(grace_s=1.0)
    hold.add(bar("A", 3), 0.0)
    hold.due(1.0)
    assert hold.add(bar("B", 2), 2.0) == [bar("B", 2)]


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
    assert encode_order(venue_order()) == {
        "symbol": "AAPL",
        "qty": "10",
        "side": "buy",
        "type": "limit",
        "time_in_force": "day",
        "client_order_id": "tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b",
        "limit_price": "126.5",
    }
    market = encode_order(venue_order(order_type=OrderType.MARKET, side=Side.SELL, qty=0.5))
    assert (market["type"], market["side"], market["qty"]) == ("market", "sell", "0.5")
    assert "limit_price" not in market
    assert "stop_price" not in market
    stop = encode_order(venue_order(order_type=OrderType.STOP, stop_price=120.25, tif="gtc"))
    assert (stop["type"], stop["stop_price"], stop["time_in_force"]) == ("stop", "120.25", "gtc")
    assert "limit_price" not in stop
    both = encode_order(venue_order(order_type=OrderType.STOP_LIMIT, stop_price=127.0))
    assert (both["limit_price"], both["stop_price"]) == ("126.5", "127")
    assert encode_order(venue_order(qty=1e-5))["qty"] == "0.00001"  # never "1e-05"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"limit_price": None}, "needs a limit price"),
        ({"order_type": OrderType.STOP, "stop_price": None}, "needs a stop price"),
        ({"qty": 0.0}, "qty must be a positive"),
        ({"qty": float("nan")}, "qty must be a positive"),
    ],
)
def test_malformed_orders_are_refused_before_sending(
    changes: dict[str, object], match: str
) -> None:
    with pytest.raises(OrderError, match=match):
        encode_order(venue_order(**changes))


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
    activity = decode_activity(
        payload("http_get_activities_fill.json")[0], "tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b"
    )
    expected = Execution(
        trade_id="61e69015-8549-4bfd-b9c3-01e75843f47d#4.0",
        client_order_id="tl0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b",
        asset_id="AAPL",
        side=Side.BUY,
        qty=4.0,
        price=126.48,
        commission=0.0,
        ts_ns=1_615_919_885_102_938_000,  # 2021-03-16T18:38:05.102938Z
    )
    assert update == expected
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
