"""The sans-I/O codec against the docs' shapes (recorded payloads) and the docs' test vector."""

from __future__ import annotations

import re

import numpy as np
import orjson
import pytest
from adapters.binance.codec import (
    ServerShutdown,
    decode_klines,
    decode_stream_frame,
    server_offset_ms,
    sign,
    signed_query,
)

from tests.adapters.binance.fake_binance import PAYLOADS, payload
from tradeloop.errors import VenueProtocolError
from tradeloop.events import BarMessage

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
        "quantity": "1",
        "price": "0.1",
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
    ],
)
def test_decode_stream_frame_malformed_kline_names_the_field(
    field: str, value: object, named: str
) -> None:
    frame = payload("ws_kline_closed.json")
    frame["data"]["k"][field] = value
    with pytest.raises(VenueProtocolError, match=re.escape(named)):
        decode_stream_frame(orjson.dumps(frame))


@pytest.mark.parametrize(("field", "value"), [("l", "16600.0"), ("c", "NaN"), ("o", "-1")])
def test_decode_stream_frame_impossible_values_are_decoded_for_the_bar_rules(
    field: str, value: str
) -> None:
    """The codec reads a kline's shape; its values are the runtime's bar rules' to judge
    (one set for every source), so an impossible kline decodes as sent and they refuse it."""
    from tradeloop.data.validation import bar_problems

    frame = payload("ws_kline_closed.json")
    frame["data"]["k"][field] = value
    bar = decode_stream_frame(orjson.dumps(frame))
    assert isinstance(bar, BarMessage)
    columns = [np.array([getattr(bar, n)]) for n in ("open", "high", "low", "close", "volume")]
    assert len(bar_problems(*columns)) == 1


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


def test_server_offset_uses_the_request_midpoint() -> None:
    # sent at 1000, answered at 1100 → the server read its clock at ~1050
    assert server_offset_ms(server_ms=6050, sent_ms=1000, received_ms=1100) == 5000
