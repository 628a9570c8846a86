"""Common file shapes onto tradeloop's column names, said out loud (never silently).

yfinance and Stooq write ``Date, Open, High, Low, Close, Adj Close, Volume``; other tools
write ``Datetime`` or ``TIMESTAMP``. The rule:

- a column whose name differs from a bar field (``open high low close volume``) or from the
  timestamp/asset column only in case or spaces is renamed to it (``Open`` → ``open``);
- with no timestamp column, one named ``date``, ``datetime`` or ``time`` (any case) is the
  timestamp;
- ``Adj Close`` (``adj_close``) is a price, never a signal: it is dropped unless the user names
  it in ``signal_columns``;
- each rename is reported once per source in a ``ColumnsMappedWarning`` that lists the mapping,
  so a capitalised ``Open`` can never become a signal while fills move to the next close.

Pure: names in, a mapping and a note out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from tradeloop.data.validation import OHLCV

__all__ = ["ADJUSTED_CLOSE", "ColumnsMappedWarning", "standard_names", "warn_mapped"]

ADJUSTED_CLOSE = "adj_close"
_TIME_NAMES = ("date", "datetime", "time", "timestamp")


class ColumnsMappedWarning(UserWarning):
    """Columns of a common file shape were renamed to tradeloop's (the message lists them)."""


def _key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def standard_names(
    columns: Sequence[str],
    *,
    timestamp_col: str = "timestamp",
    asset_col: str = "asset_id",
    signal_columns: Sequence[str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """``(renames, dropped)`` for ``columns``: what becomes what, and what is left out.

    Columns already in tradeloop's spelling are left alone; a rename never overwrites an
    existing column.
    """
    present = set(columns)
    wanted = (timestamp_col, asset_col, *OHLCV)
    renames: dict[str, str] = {}
    for name in columns:
        if name in present and name in wanted:
            continue
        for target in wanted:
            if target not in present and target not in renames.values() and _key(name) == target:
                renames[name] = target
    if timestamp_col not in present and timestamp_col not in renames.values():
        for name in columns:
            if _key(name) in _TIME_NAMES and name not in renames:
                renames[name] = timestamp_col
                break
    named = set(signal_columns or ())
    dropped: list[str] = []
    for name in columns:
        if _key(name) != ADJUSTED_CLOSE or name in named:
            continue
        if ADJUSTED_CLOSE in named and ADJUSTED_CLOSE not in present:
            renames[name] = ADJUSTED_CLOSE  # asked for by its tradeloop name
        else:
            dropped.append(name)
    return renames, dropped


def warn_mapped(source: str, renames: dict[str, str], dropped: Sequence[str]) -> None:
    """The mapping note: one ``ColumnsMappedWarning`` naming every rename and dropped column."""
    if not renames and not dropped:
        return
    parts = [f"{old!r} → {new!r}" for old, new in renames.items()]
    note = f"{source}: read columns as " + ", ".join(parts) if parts else f"{source}:"
    if dropped:
        note += (
            f"; {', '.join(repr(d) for d in dropped)} left out (a price, not a signal: fills use "
            f"open/close; name {ADJUSTED_CLOSE!r} in signal_columns to read it)"
        )
    warnings.warn(note + ".", ColumnsMappedWarning, stacklevel=4)
