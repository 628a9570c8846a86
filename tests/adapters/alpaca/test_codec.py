"""The sans-I/O codec, path by path, on the recorded payloads. Expected values are read off the
payload files by hand (epoch seconds of 2021-02-22T19:15:00Z: 1614021300, from `date -d`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import structlog
from adapters.alpaca.codec import (
    Authenticated,
    BarCorrection,
    Connected,
    CorrectionHold,
    DataStreamDecoder,
    StreamError,
    Subscribed,
    decode_bars_page,
    rfc3339,
    ts_ns_from_rfc3339,
)

from tests.adapters.alpaca.fake_venue import PAYLOADS
from tradeloop.data.validation import BAR_RULES, OHLCV
from tradeloop.errors import VenueProtocolError
from tradeloop.events import BarMessage
from tradeloop.runtime.intake import Intake, IntakeLimits

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


GOOD = {"T": "b", "S": "X", "o": 1, "h": 2, "l": 1, "c": 2, "v": 5, "t": "2021-02-22T19:15:00Z"}


def test_malformed_items_are_skipped_and_counted_the_rest_of_the_batch_survives() -> None:
    frame = json.dumps(
        [
            dict(GOOD, c="2"),  # a string price
            dict(GOOD, t="yesterday"),
            {"T": "b", "S": "X"},  # missing fields
            GOOD,
        ]
    )
    decoder = DataStreamDecoder()
    assert decoder.decode(frame) == [BarMessage("X", T0, 1.0, 2.0, 1.0, 2.0, 5.0)]
    assert decoder.skipped == 3
    assert decoder.decode(b"not json") == []
    assert decoder.skipped == 4


def test_impossible_bar_values_pass_the_codec_and_the_one_bar_validation_refuses_them() -> None:
    """The codec checks shape only; the values are judged by BAR_RULES in the runtime's intake,
    the same rules (and the same per-rule counters) as every other feed and a history run."""
    frame = json.dumps([dict(GOOD, h=0.5), dict(GOOD, S="Y")])  # X: high 0.5 below low 1
    bars = DataStreamDecoder().decode(frame)
    assert [b.asset_id for b in bars] == ["X", "Y"]
    intake = Intake(IntakeLimits(), structlog.get_logger())
    columns = {k: np.array([getattr(b, k) for b in bars]) for k in OHLCV}
    kept, arrays = intake.valid(T0, ["X", "Y"], columns)
    assert kept == ["Y"]
    assert arrays["high"].tolist() == [2.0]
    assert sum(intake.invalid_bars.values()) == 1
    (rule,) = intake.invalid_bars
    assert rule in {r.name for r in BAR_RULES}


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
