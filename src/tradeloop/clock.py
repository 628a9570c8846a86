"""Time as tradeloop keeps it: UTC nanoseconds inside, aware UTC datetimes at the surface.

Converting is the expensive part, so the replay hands out nanoseconds and converts only when
someone reads a datetime (``event.timestamp``, a fill): ``utc_datetime`` remembers its last
answer, so the 500 assets of one timestamp share one conversion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

__all__ = ["LazyTimestamp", "datetimes_from_ns", "utc_datetime", "utc_ns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_S = 1_000_000_000


class _Last:
    ts_ns: int | None = None
    value: datetime = _EPOCH


def utc_datetime(ts_ns: int) -> datetime:
    """The aware UTC datetime of ``ts_ns`` (microsecond precision, as datetime allows)."""
    if ts_ns == _Last.ts_ns:
        return _Last.value
    seconds, rest = divmod(ts_ns, _NS_PER_S)
    value = (
        datetime.fromtimestamp(seconds, UTC)
        if rest == 0
        else _EPOCH + timedelta(microseconds=ts_ns // 1_000)
    )
    _Last.ts_ns, _Last.value = ts_ns, value
    return value


def utc_ns(timestamp: datetime) -> int:
    """UTC nanoseconds of ``timestamp``; a naive datetime is read as UTC."""
    aware = timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1_000


def datetimes_from_ns(ts_ns: npt.NDArray[np.int64]) -> list[datetime]:
    """Many aware UTC datetimes at once (whole seconds take the ~3x faster path)."""
    if not len(ts_ns):
        return []
    seconds, rest = np.divmod(ts_ns, _NS_PER_S)
    if not rest.any():
        make = datetime.fromtimestamp
        return [make(second, UTC) for second in seconds.tolist()]
    return [_EPOCH + timedelta(microseconds=us) for us in (ts_ns // 1_000).tolist()]


class LazyTimestamp:
    """``timestamp``: the aware UTC datetime of ``ts_ns``, made the first time it is read and
    kept in ``_timestamp`` (None until then). For slotted classes that have both."""

    __slots__ = ()
    ts_ns: int
    _timestamp: datetime | None

    @property
    def timestamp(self) -> datetime:
        value = self._timestamp
        if value is None:
            value = self._timestamp = utc_datetime(self.ts_ns)  # type: ignore[misc]  # a subclass slot
        return value
