"""The bar-stream wire format, sans I/O: JSON text in, typed messages out (and back).

One message per WebSocket text frame::

    {"type": "bar", "asset_id": "AAA", "ts_ns": 1641243600000000000,
     "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0,
     "signals": {"ml_pred": 0.7}}
    {"type": "bars", "ts_ns": 1641243600000000000, "asset_id": ["AAA", "BBB"],
     "open": [1.0, 2.0], "high": [...], "low": [...], "close": [...], "volume": [...],
     "signals": {"ml_pred": [0.7, null]}}
    {"type": "context", "name": "VIX", "ts_ns": 1641243600000000000, "value": 18.2}
    {"type": "end"}

A ``bars`` message carries every asset's bar of one timestamp in columns (null = no signal):
one frame per timestamp, decoded without a Python object per bar. ``encode_binary`` writes the
same message as a binary frame of a fixed layout, for a stream whose latency matters::

    b"TLB2" | ts_ns: int64 LE | header length: uint32 LE | header | float64 LE columns

The header is JSON (``asset_id``, the signal names), padded with spaces so the columns start
8-byte aligned; the columns (open, high, low, close, volume, signals…) follow back to back.
The timestamp is outside the header, so a stream that repeats its universe sends the same
header bytes every frame: ``decode`` then compares bytes instead of parsing and checking 500
asset ids, and the columns are one ``numpy.frombuffer`` view of the frame (no copy). Such a
message's ``asset_ids`` is the list of the last frame with that header: never change it in
place. ``TLB1`` frames (the timestamp inside the JSON header, an older server) still decode.

``decode`` raises ``VenueProtocolError`` naming what is wrong with a frame's shape; it never
guesses a number. Whether a bar's values are possible (finite, positive, within its range) is
not the codec's to say: the runtime checks every bar, from any source, against the one set of
bar rules (``data.validation.BAR_RULES``).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tradeloop.errors import VenueProtocolError
from tradeloop.events import (
    BarBatchMessage,
    BarMessage,
    ContextMessage,
    EndMessage,
    Message,
)

__all__ = [
    "NEXT_START_HEADER",
    "decode",
    "encode",
    "encode_binary",
]

# GET /history answers in pages; one cut short names the next page's start (UTC ns) here
NEXT_START_HEADER = "X-Tradeloop-Next-Start-Ns"


_PRICES = ("open", "high", "low", "close")
_COLUMNS = (*_PRICES, "volume")
_MAGIC = b"TLB2"
_MAGIC_V1 = b"TLB1"
_FIXED = 16  # magic, ts_ns, header length
_last_checked_ids: list[Any] = []
_last_header: tuple[bytes, list[str], list[str]] = (b"", [], [])  # bytes, asset ids, signals
_BINARY = (bytes, bytearray)
_TS_AND_SIZE = struct.Struct("<qI")  # a TLB2 frame's timestamp and header length
_F8 = np.dtype("<f8")
_NUMBERS = frozenset((int, float))
_NULLABLE = _NUMBERS | {type(None)}


def encode(message: Message) -> str:
    if isinstance(message, BarMessage):
        return _dumps(
            {
                "type": "bar",
                "asset_id": message.asset_id,
                "ts_ns": message.ts_ns,
                "open": message.open,
                "high": message.high,
                "low": message.low,
                "close": message.close,
                "volume": message.volume,
                "signals": message.signals,
            }
        )
    if isinstance(message, BarBatchMessage):
        return _dumps(
            {
                "type": "bars",
                "ts_ns": message.ts_ns,
                "asset_id": message.asset_ids,
                **{name: getattr(message, name).tolist() for name in _COLUMNS},
                "signals": {n: _nulls(v) for n, v in message.signals.items()},
            }
        )
    if isinstance(message, ContextMessage):
        return _dumps(
            {
                "type": "context",
                "name": message.name,
                "ts_ns": message.ts_ns,
                "value": message.value,
            }
        )
    return '{"type": "end"}'


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()  # NaN is written as null


def encode_binary(message: BarBatchMessage) -> bytes:
    """A ``bars`` message as one binary frame (see the module docstring)."""
    names = list(message.signals)
    header = orjson.dumps({"asset_id": message.asset_ids, "signals": names})
    header += b" " * (-len(header) % 8)  # the columns start 8-byte aligned
    body = np.concatenate(
        [getattr(message, c) for c in _COLUMNS] + [message.signals[n] for n in names]
    ).astype("<f8", copy=False)
    fixed = _MAGIC + message.ts_ns.to_bytes(8, "little", signed=True)
    return fixed + len(header).to_bytes(4, "little") + header + body.tobytes()


def decode(text: str | bytes) -> Message:
    """Parse one frame; raise ``VenueProtocolError`` for anything malformed."""
    if isinstance(text, _BINARY):
        magic = text[:4]
        if magic == _MAGIC:
            return _binary_bars(bytes(text))
        if magic == _MAGIC_V1:
            return _binary_bars_v1(bytes(text))
    try:
        raw = orjson.loads(text)  # strict JSON (no NaN), and 5x the stdlib's speed
    except orjson.JSONDecodeError as err:
        raise VenueProtocolError(f"not JSON: {str(text)[:80]!r} ({err})") from err
    if not isinstance(raw, dict):
        raise VenueProtocolError(f"expected a JSON object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind == "bar":
        return _bar(raw)
    if kind == "bars":
        return _bars(raw)
    if kind == "context":
        name, ts_ns = raw.get("name"), raw.get("ts_ns")
        if not isinstance(name, str) or not isinstance(ts_ns, int):
            raise VenueProtocolError(f"context message needs a name and an integer ts_ns: {raw}")
        return ContextMessage(name, ts_ns, raw.get("value"))
    if kind == "end":
        return EndMessage()
    raise VenueProtocolError(f"unknown message type {kind!r}: {str(raw)[:80]}")


def _bar(raw: dict[str, Any]) -> BarMessage:
    asset, ts_ns = raw.get("asset_id"), raw.get("ts_ns")
    if not isinstance(asset, str) or not asset or not isinstance(ts_ns, int):
        raise VenueProtocolError(f"bar needs a string asset_id and an integer ts_ns: {raw}")
    values = []
    for name in (*_PRICES, "volume"):
        value = raw.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise VenueProtocolError(f"bar {asset}@{ts_ns}: {name} is {value!r}, not a number")
        values.append(float(value))
    signals = raw.get("signals") or {}
    if not isinstance(signals, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in signals.items()
    ):
        raise VenueProtocolError(f"bar {asset}@{ts_ns}: signals must map names to numbers")
    open_, high, low, close, volume = values
    return BarMessage(
        asset, ts_ns, open_, high, low, close, volume, {k: float(v) for k, v in signals.items()}
    )


def _nulls(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]


def _binary_bars(frame: bytes) -> BarBatchMessage:
    """A ``TLB2`` frame; its header is parsed and checked only when it differs from the last."""
    global _last_header
    if len(frame) < _FIXED:
        raise VenueProtocolError(f"binary bars frame: {len(frame)} bytes, shorter than its header")
    ts_ns, size = _TS_AND_SIZE.unpack_from(frame, 4)
    known, assets, names = _last_header
    if size != len(known) or not size or not frame.startswith(known, _FIXED):
        assets, names = _binary_header(frame[_FIXED : _FIXED + size], ts_ns)
        _last_header = (frame[_FIXED : _FIXED + size], assets, names)
    n, k = len(assets), len(_COLUMNS) + len(names)
    start = _FIXED + size
    if len(frame) - start != 8 * n * k:
        raise VenueProtocolError(
            f"bars@{ts_ns}: {len(frame) - start} bytes of columns, expected {8 * n * k} ({n} × {k})"
        )
    # the columns as one read-only array over the frame's bytes; not from encode_binary
    # (not 8-byte aligned), over a copy that is
    buffer, offset = (frame[start:], 0) if start % 8 else (frame, start)
    values = np.ndarray((k, n), _F8, buffer, offset)
    return BarBatchMessage(
        ts_ns,
        assets,
        values[0],
        values[1],
        values[2],
        values[3],
        values[4],
        {name: values[len(_COLUMNS) + j] for j, name in enumerate(names)},
        read_only=True,  # views of bytes
    )


def _binary_header(header: bytes, ts_ns: int) -> tuple[list[str], list[str]]:
    """The asset ids and signal names of a ``TLB2`` header (checked)."""
    try:
        raw = orjson.loads(header)
        assets, names = raw["asset_id"], raw["signals"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as err:
        raise VenueProtocolError(f"binary bars frame: bad header ({err!r})") from err
    if not isinstance(assets, list) or not isinstance(names, list):
        raise VenueProtocolError("binary bars frame: header needs asset_id and signals lists")
    if set(map(type, names)) - {str} or len(set(names)) != len(names):
        raise VenueProtocolError(f"bars@{ts_ns}: signal names must be distinct strings")
    _check_ids(assets, ts_ns)
    return assets, names


def _binary_bars_v1(frame: bytes) -> BarBatchMessage:
    """A ``TLB1`` frame: the timestamp inside the JSON header, parsed every frame."""
    size = int.from_bytes(frame[4:8], "little")
    try:
        header = orjson.loads(frame[8 : 8 + size])
        ts_ns, assets, names = header["ts_ns"], header["asset_id"], header["signals"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as err:
        raise VenueProtocolError(f"binary bars frame: bad header ({err!r})") from err
    if not isinstance(ts_ns, int) or not isinstance(assets, list) or not isinstance(names, list):
        raise VenueProtocolError("binary bars frame: header needs ts_ns, asset_id and signals")
    n, k = len(assets), len(_COLUMNS) + len(names)
    body = frame[8 + size :]
    if len(body) != 8 * n * k:
        raise VenueProtocolError(
            f"bars@{ts_ns}: {len(body)} bytes of columns, expected {8 * n * k} ({n} × {k})"
        )
    values = np.frombuffer(body, dtype="<f8").reshape(k, n).astype(np.float64, copy=False)
    columns = {name: values[j] for j, name in enumerate(_COLUMNS)}
    signals = {str(name): values[len(_COLUMNS) + j] for j, name in enumerate(names)}
    return _checked_batch(ts_ns, assets, columns, signals)


def _bars(raw: dict[str, Any]) -> BarBatchMessage:
    ts_ns, assets = raw.get("ts_ns"), raw.get("asset_id")
    if not isinstance(ts_ns, int) or not isinstance(assets, list):
        raise VenueProtocolError("bars message needs an integer ts_ns and a list asset_id")
    n = len(assets)
    columns = {
        name: _column(raw.get(name), n, f"bars@{ts_ns}: {name}", nulls=False) for name in _COLUMNS
    }
    signals = raw.get("signals") or {}
    if not isinstance(signals, dict):
        raise VenueProtocolError(f"bars@{ts_ns}: signals must map names to lists")
    return _checked_batch(
        ts_ns,
        assets,
        columns,
        {str(k): _column(v, n, f"bars@{ts_ns}: {k}", nulls=True) for k, v in signals.items()},
    )


def _checked_batch(
    ts_ns: int,
    assets: list[Any],
    columns: dict[str, npt.NDArray[np.float64]],
    signals: dict[str, npt.NDArray[np.float64]],
) -> BarBatchMessage:
    """The batch, once its asset ids are distinct non-empty strings."""
    global _last_checked_ids
    if assets != _last_checked_ids:  # a stream repeats its universe: check each list once
        _check_ids(assets, ts_ns)
        _last_checked_ids = assets
    return BarBatchMessage(
        ts_ns,
        assets,
        columns["open"],
        columns["high"],
        columns["low"],
        columns["close"],
        columns["volume"],
        signals,
    )


def _check_ids(assets: list[Any], ts_ns: int) -> None:
    if set(map(type, assets)) - {str} or len(unique := set(assets)) != len(assets) or "" in unique:
        raise VenueProtocolError(f"bars@{ts_ns}: asset_id must be distinct non-empty strings")


def _column(values: Any, n: int, where: str, *, nulls: bool) -> npt.NDArray[np.float64]:
    if not isinstance(values, list) or len(values) != n:
        raise VenueProtocolError(f"{where}: expected a list of {n} numbers")
    if not set(map(type, values)) <= (_NULLABLE if nulls else _NUMBERS):  # bool is not a number
        raise VenueProtocolError(f"{where}: not all numbers: {str(values)[:80]}")
    return np.array(values, dtype=np.float64)  # None -> nan
