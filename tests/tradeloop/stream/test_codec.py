"""The binary bars frame (``stream.codec``): its fixed layout, a repeated header decoded
once, and every malformed frame refused with a ``VenueProtocolError``."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tradeloop.data.validation import bar_problems
from tradeloop.errors import VenueProtocolError
from tradeloop.events import BarBatchMessage
from tradeloop.stream.codec import decode, encode_binary

TS = 1_700_000_000_000_000_000


def batch(ts_ns: int = TS, assets: tuple[str, ...] = ("AAA", "BBB", "CCC")) -> BarBatchMessage:
    n = len(assets)
    close = np.arange(1.0, n + 1.0) * 10.0
    score = np.array([0.5, np.nan, -1.25, 2.0][:n])
    return BarBatchMessage(
        ts_ns, list(assets), close - 1, close + 2, close - 2, close, close * 100, {"score": score}
    )


def by_hand(header: object, columns: bytes) -> bytes:
    """A TLB2 frame written here, not by ``encode_binary`` (its header unpadded)."""
    text = orjson.dumps(header)
    return b"TLB2" + TS.to_bytes(8, "little") + len(text).to_bytes(4, "little") + text + columns


def columns_at(frame: bytes) -> int:
    return 16 + int.from_bytes(frame[12:16], "little")


def test_binary_frame_round_trips_every_column_and_nan_signal() -> None:
    message = batch()
    back = decode(encode_binary(message))
    assert isinstance(back, BarBatchMessage)
    assert back.ts_ns == TS
    assert back.asset_ids == ["AAA", "BBB", "CCC"]
    for name in ("open", "high", "low", "close", "volume"):
        assert getattr(back, name).tolist() == getattr(message, name).tolist()
    assert list(back.signals) == ["score"]
    assert np.array_equal(back.signals["score"], message.signals["score"], equal_nan=True)


def test_binary_frame_layout_puts_the_timestamp_outside_an_aligned_header() -> None:
    frame = encode_binary(batch())
    assert frame[:4] == b"TLB2"
    assert int.from_bytes(frame[4:12], "little", signed=True) == TS
    start = columns_at(frame)
    assert start % 8 == 0
    assert orjson.loads(frame[16:start]) == {
        "asset_id": ["AAA", "BBB", "CCC"],
        "signals": ["score"],
    }
    # the columns are 6 rows of 3 float64s (open, high, low, close, volume, score)
    body = np.frombuffer(frame[start:], dtype="<f8").reshape(6, 3)
    assert body[3].tolist() == [10.0, 20.0, 30.0]
    back = decode(frame)
    assert isinstance(back, BarBatchMessage)
    assert np.shares_memory(back.close, np.frombuffer(frame, dtype=np.uint8))  # a view, no copy
    header = {"asset_id": ["AAA", "BBB", "CCC"], "signals": ["score"]}
    unaligned = by_hand(header, frame[start:])
    assert columns_at(unaligned) % 8 != 0
    again = decode(unaligned)
    assert isinstance(again, BarBatchMessage)
    assert again.close.tolist() == [10.0, 20.0, 30.0]


def test_binary_frames_repeating_a_header_share_its_checked_asset_ids() -> None:
    first, second = decode(encode_binary(batch(TS))), decode(encode_binary(batch(TS + 1)))
    assert isinstance(first, BarBatchMessage)
    assert isinstance(second, BarBatchMessage)
    assert second.ts_ns == TS + 1
    assert second.asset_ids is first.asset_ids
    other = decode(encode_binary(batch(TS + 2, ("AAA", "DDD"))))
    assert isinstance(other, BarBatchMessage)
    assert other.asset_ids == ["AAA", "DDD"]
    assert other.close.tolist() == [10.0, 20.0]


def test_binary_frame_with_a_broken_header_is_refused_after_a_good_one() -> None:
    good = encode_binary(batch())
    decode(good)  # the header is now the remembered one
    for assets, why in [
        (("AAA", "AAA", "CCC"), "distinct non-empty strings"),
        (("AAA", "", "CCC"), "distinct non-empty strings"),
    ]:
        with pytest.raises(VenueProtocolError, match=why):
            decode(encode_binary(batch(TS, assets)))
    start = columns_at(good)
    with pytest.raises(VenueProtocolError, match="bad header"):
        decode(good[:17] + b"!" + good[18:])  # one byte of the remembered header changed
    numbers = {"asset_id": [1, 2, 3], "signals": ["score"]}
    with pytest.raises(VenueProtocolError, match="distinct non-empty strings"):
        decode(by_hand(numbers, good[start:]))
    with pytest.raises(VenueProtocolError, match="signal names must be distinct"):
        decode(by_hand({"asset_id": ["AAA", "BBB", "CCC"], "signals": [7]}, good[start:]))
    with pytest.raises(VenueProtocolError, match="needs asset_id and signals lists"):
        decode(by_hand({"asset_id": "AAA", "signals": []}, good[start:]))
    with pytest.raises(VenueProtocolError, match="bytes of columns, expected"):
        decode(good[:-8])
    with pytest.raises(VenueProtocolError, match="shorter than its header"):
        decode(good[:10])


def test_binary_frame_breaking_a_bar_rule_decodes_for_the_runtime_to_refuse() -> None:
    frame = encode_binary(batch())
    start = columns_at(frame)
    body = np.frombuffer(frame[start:], dtype="<f8").copy()
    body[2 * 3 + 1] = 2.0 * body[1 * 3 + 1]  # BBB's low above its high
    odd = decode(frame[:start] + body.tobytes())
    assert isinstance(odd, BarBatchMessage)
    problems = bar_problems(odd.open, odd.high, odd.low, odd.close, odd.volume)
    assert [(i, rule.name) for i, rule in problems] == [(1, "high_below_low")]


def test_binary_frame_of_the_first_version_still_decodes() -> None:
    message = batch()
    header = orjson.dumps({"ts_ns": TS, "asset_id": message.asset_ids, "signals": ["score"]})
    columns = (message.open, message.high, message.low, message.close, message.volume)
    body = np.concatenate([*columns, message.signals["score"]])
    frame = b"TLB1" + len(header).to_bytes(4, "little") + header + body.tobytes()
    back = decode(frame)
    assert isinstance(back, BarBatchMessage)
    assert (back.ts_ns, back.asset_ids) == (TS, ["AAA", "BBB", "CCC"])
    assert back.low.tolist() == message.low.tolist()
    with pytest.raises(VenueProtocolError, match="bad header"):
        decode(frame[:8] + b"!" + frame[9:])
