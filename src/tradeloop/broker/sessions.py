"""Trading sessions: when a DAY order's session ends, and how many sessions a year has.

A session is a UTC day (the default, and ``"24/7"``: crypto trades around the clock) or a
session of an exchange calendar from the ``exchange_calendars`` package (``"XNYS"``,
``"XLON"``...; ``pip install 'tradeloop[calendars]'``). A bar belongs to the first session
whose close is at or after its time: bars are stamped at their close, so a daily bar at 21:00
UTC belongs to that day's NYSE session, and a bar after the close to the next session. A DAY
order lives for the session of its first eligible bar and expires at the first bar after
that session's close (``session_end_ns`` is exclusive).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloop.errors import ConfigError

__all__ = ["UTC_DAYS", "Sessions", "periods_per_year", "sessions_for"]

_DAY_NS = 86_400 * 1_000_000_000
_YEAR_NS = int(365.25 * _DAY_NS)
UTC_DAYS = ("UTC", "24/7", "24/7/365")


class Sessions:
    """One calendar's sessions, loaded lazily around the times asked about."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or "UTC"
        self._utc = self.name.upper() in UTC_DAYS
        self._closes: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._span = (0, -1)
        if not self._utc:
            self._calendar_module()  # fail at construction, not at the first DAY order

    def session_end_ns(self, ts_ns: int) -> int:
        """The exclusive end of the session a bar at ``ts_ns`` belongs to."""
        if self._utc:
            return (ts_ns // _DAY_NS + 1) * _DAY_NS
        closes = self._closes_around(ts_ns)
        return int(closes[int(np.searchsorted(closes, ts_ns, side="left"))]) + 1

    def sessions_per_year(self, start_ns: int, end_ns: int) -> float:
        """Sessions a year over the calendar years from ``start_ns`` to ``end_ns``: what
        metrics annualise by (365 or 366 for UTC days, about 252 for the NYSE)."""
        years = range(_year(start_ns), _year(end_ns) + 1)
        if self._utc:
            return float(np.mean([366.0 if _leap(year) else 365.0 for year in years]))
        calendar = self._calendar(f"{years[0]}-01-01", f"{years[-1]}-12-31")
        return float(len(calendar.sessions)) / len(years)

    # -- internals ---------------------------------------------------------------------------

    def _closes_around(self, ts_ns: int) -> npt.NDArray[np.int64]:
        low, high = self._span
        if not low <= ts_ns < high:
            start = np.datetime64(ts_ns - _YEAR_NS, "ns").astype("datetime64[D]")
            end = np.datetime64(ts_ns + 2 * _YEAR_NS, "ns").astype("datetime64[D]")
            calendar = self._calendar(str(start), str(end))
            closes = calendar.closes.dt.tz_convert(None).astype("datetime64[ns]")
            self._closes = closes.to_numpy().astype(np.int64)
            self._span = (int(self._closes[0]), int(self._closes[-1]))
        return self._closes

    def _calendar(self, start: str, end: str) -> Any:
        module = self._calendar_module()
        try:
            with warnings.catch_warnings():
                # exchange_calendars 4.13 trips pandas 3.1 deprecations inside its own code:
                # not ours to fix, and not a reason to stop a run
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                calendar = module.get_calendar(self.name, start=start, end=end)
                calendar.closes  # noqa: B018 - built lazily: build it under the same filter
                calendar.sessions  # noqa: B018
                return calendar
        except Exception as err:  # the package's own errors: an unknown name, out of range
            raise ConfigError(
                f"calendar {self.name!r} from {start} to {end}: {err}. Fix: use a name "
                "exchange_calendars knows (XNYS, XLON, XTKS...) or '24/7' for crypto."
            ) from err

    def _calendar_module(self) -> Any:
        try:
            import exchange_calendars
        except ImportError as err:
            raise ConfigError(
                f"calendar {self.name!r} needs the exchange_calendars package. Fix: pip "
                "install 'tradeloop[calendars]' (or use '24/7' for UTC days)"
            ) from err
        return exchange_calendars


def sessions_for(calendar: str | Mapping[str, str] | None) -> tuple[Sessions, dict[str, Sessions]]:
    """(the default sessions, the per-asset ones) for a broker's ``calendar`` option: one
    name for every asset, or asset → name (assets not named: UTC days)."""
    if calendar is None or isinstance(calendar, str):
        return Sessions(calendar), {}
    by_name: dict[str, Sessions] = {}
    per_asset = {
        asset: by_name.setdefault(name, Sessions(name)) for asset, name in calendar.items()
    }
    return Sessions(None), per_asset


def periods_per_year(
    calendar: str | Mapping[str, str] | None, start_ns: int, end_ns: int
) -> float | None:
    """What metrics annualise by for a broker's ``calendar``: its sessions a year over the
    run (with asset → name, the name most assets use; the first on a tie), or None without
    a calendar (the caller keeps its default)."""
    if calendar is None:
        return None
    if not isinstance(calendar, str):
        names = list(calendar.values())
        if not names:
            return None
        calendar = max(names, key=names.count)
    return Sessions(calendar).sessions_per_year(start_ns, end_ns)


def _year(ts_ns: int) -> int:
    return int(np.datetime64(ts_ns, "ns").astype("datetime64[Y]").astype(np.int64)) + 1970


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
