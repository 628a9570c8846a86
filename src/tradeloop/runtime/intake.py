"""What a stream may put in front of the strategy. Pure: the wall clock is passed in.

A feed is not trusted to be sane: a bar that breaks the bar rules, a bar from the future, a
flood of phantom assets or context names, a label where a number was. Each of these is
refused before anything sees it, counted under its kind and logged (the first ten, then
every hundredth), never handled:

- ``invalid_bars``: a bar that breaks one of the bar rules (``data.validation.BAR_RULES``,
  the same rules a history run applies), counted under the rule;
- ``future_bars``: a bar stamped more than ``max_future_s`` after the wall clock. It never
  advances the run's clock, so one bar dated 2100 cannot make every later real bar "late".
- ``unknown_assets``: a bar of an asset outside the declared ``universe``, or, with no
  universe, of a new asset once ``max_assets`` have been seen.
- ``unknown_context``: a context value for a name outside the declared context names, or,
  with none declared, of a new name once ``max_context_names`` have been seen.
- ``refused_context``: a context value of another kind than the series had (text for a
  series of numbers, or a number for a series of labels): the value in force stays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from tradeloop.clock import utc_datetime
from tradeloop.data.validation import OHLCV, bar_problems, keeps_bar_rules

__all__ = ["Intake", "IntakeLimits"]

F64 = npt.NDArray[np.float64]


def _keeps_each(open_: F64, high: F64, low: F64, close: F64, volume: F64) -> bool:
    """``keeps_bar_rules`` bar by bar, stopping at the first bad one: the same conjunction
    (NaN compares False), in one pass with no temporaries, for numba to compile."""
    for i in range(len(low)):
        lo, hi, op, cl = low[i], high[i], open_[i], close[i]
        if not (0 < lo <= op <= hi < math.inf and lo <= cl <= hi) or volume[i] < 0:
            return False
    return True


# A stream's first look at a timestamp's bars: the bar rules' one conjunction, compiled by
# numba. One call instead of the numpy form's fourteen array calls: after the idle gap
# between a live feed's frames every numpy call wakes cold, and a 500-asset check took
# ~120-200 µs in situ against ~40-65 µs compiled (BENCHMARKS.md, issue 14 round 3). The
# loop, not the numpy form compiled: numba's array expressions allocate a temporary a step
# (~60,000 instructions for 500 bars, ~18 % of a frame); the loop costs a few per bar. Only
# the live runtime imports this module, so a backtest never loads numba for it.
_keeps_compiled = njit(cache=True, nogil=True)(_keeps_each)
_F64 = np.dtype(np.float64)


def _keeps(columns: list[npt.NDArray[Any]]) -> bool:
    """``keeps_bar_rules`` over float columns, compiled; other dtypes (a JSON feed's integer
    volumes) take the numpy form rather than a compile in the middle of a stream."""
    for column in columns:
        if column.dtype is not _F64 and column.dtype != _F64:
            return keeps_bar_rules(*columns)
    return bool(_keeps_compiled(*columns))


def _load_compiled() -> None:
    """Load the compiled check for the columns a stream hands over (writable arrays, and the
    read-only views of a binary frame) before the first bar, not on it."""
    column = np.ones(1)
    view = column.copy()
    view.flags.writeable = False
    _keeps_compiled(column, column, column, column, column)
    _keeps_compiled(view, view, view, view, view)


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    universe: frozenset[str] | None = None  # the only assets a run trades, when declared
    context_names: frozenset[str] | None = None  # the only context names, when declared
    max_assets: int = 10_000
    max_context_names: int = 1_000
    max_future_s: float | None = None  # None: bars from any time (a replay of any data)


class Intake:
    """The refusals of one run, with their counts (``counters``)."""

    def __init__(
        self,
        limits: IntakeLimits,
        log: Any,
        *,
        assets: Iterable[str] = (),
        context: Mapping[str, tuple[int, Any]] | None = None,
    ) -> None:
        self.limits = limits
        self.invalid_bars: dict[str, int] = {}  # by the rule they broke
        self.future_bars = 0
        self.unknown_assets = 0
        self.unknown_context = 0
        self.refused_context = 0
        self._log = log
        self._assets = set(assets)  # the assets seen so far (a restart: those it had)
        self._let_in: list[str] | None = None  # the last list let in whole
        self._names: set[str] = set(context or ())
        self._kinds = {name: _is_number(value) for name, (_, value) in (context or {}).items()}
        _load_compiled()

    def counters(self) -> dict[str, int]:
        return {
            "future_bars": self.future_bars,
            "unknown_assets": self.unknown_assets,
            "unknown_context": self.unknown_context,
            "refused_context": self.refused_context,
        }

    def valid(
        self, ts_ns: int, asset_ids: list[str], arrays: dict[str, npt.NDArray[np.float64]]
    ) -> tuple[list[str], dict[str, npt.NDArray[np.float64]]]:
        """The bars of one timestamp that keep the bar rules (asset ids and columns)."""
        columns = [arrays["open"], arrays["high"], arrays["low"], arrays["close"], arrays["volume"]]
        if _keeps(columns):
            return asset_ids, arrays
        problems = bar_problems(*columns)
        for index, rule in problems:
            total = self.invalid_bars[rule.name] = self.invalid_bars.get(rule.name, 0) + 1
            self._tell(
                "bar_refused",
                total,
                rule=rule.name,
                what=rule.what,
                asset=asset_ids[index],
                ts=str(utc_datetime(ts_ns)),
                values={k: float(arrays[k][index]) for k in OHLCV},
            )
        keep = np.ones(len(asset_ids), dtype=bool)
        keep[[index for index, _ in problems]] = False
        kept = [a for a, k in zip(asset_ids, keep.tolist(), strict=True) if k]
        return kept, {name: column[keep] for name, column in arrays.items()}

    def from_future(self, ts_ns: int, now_s: float, n_bars: int, asset_id: str = "") -> bool:
        """Whether bars at ``ts_ns`` are too far ahead of the wall clock ``now_s``."""
        ahead = self.limits.max_future_s
        if ahead is None or ts_ns <= (now_s + ahead) * 1e9:
            return False
        self.future_bars += n_bars
        self._tell(
            "future_bar_refused",
            self.future_bars,
            ts=str(utc_datetime(ts_ns)),
            asset=asset_id,
            ahead_s=round(ts_ns / 1e9 - now_s, 3),
            max_future_s=ahead,
        )
        return True

    def asset_refused(self, asset_id: str, ts_ns: int) -> bool:
        """Whether a bar of ``asset_id`` is refused (outside the universe, over the cap)."""
        if asset_id in self._assets:
            return False
        universe = self.limits.universe
        if universe is not None:
            refused = asset_id not in universe
        else:
            refused = len(self._assets) >= self.limits.max_assets
        if not refused:
            self._assets.add(asset_id)
            return False
        self.unknown_assets += 1
        why = "not in the universe" if universe is not None else "over max_assets"
        self._tell(
            "unknown_asset_dropped",
            self.unknown_assets,
            asset=asset_id[:64],
            why=why,
            ts=str(utc_datetime(ts_ns)),
        )
        return True

    def kept(self, asset_ids: list[str], ts_ns: int) -> list[int] | None:
        """The indices of ``asset_ids`` let in (None: all of them). A stream's decoder hands
        over the same list while its universe repeats (``stream.codec``), and the assets seen
        only grow: a list let in whole before is let in again without a look."""
        if asset_ids is self._let_in:
            return None
        if self._assets.issuperset(asset_ids):  # the usual case, in one C-level pass
            self._let_in = asset_ids
            return None
        keep = [i for i, asset in enumerate(asset_ids) if not self.asset_refused(asset, ts_ns)]
        return None if len(keep) == len(asset_ids) else keep

    def context_refused(self, name: str, ts_ns: int, value: Any) -> bool:
        """Whether a context value is refused: an undeclared (or one too many) name, or a
        value of the other kind than its series holds."""
        if name not in self._names:
            declared = self.limits.context_names
            if declared is not None:
                refused = name not in declared
            else:
                refused = len(self._names) >= self.limits.max_context_names
            if refused:
                self.unknown_context += 1
                self._tell("unknown_context_dropped", self.unknown_context, name=name[:64])
                return True
            self._names.add(name)
        if value is None or value != value:  # a missing value: the series carries on
            return False
        kind = self._kinds.setdefault(name, _is_number(value))
        if kind == _is_number(value):
            return False
        self.refused_context += 1
        self._tell(
            "context_value_refused",
            self.refused_context,
            name=name,
            value=repr(value)[:64],
            expected="a number" if kind else "a label",
            ts=str(utc_datetime(ts_ns)),
        )
        return True

    def _tell(self, event: str, total: int, **details: Any) -> None:
        if total <= 10 or total % 100 == 0:
            self._log.warning(event, total=total, **details)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
