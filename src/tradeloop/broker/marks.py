"""Marks: each asset's latest price (its last close), what the book values positions at.

A timestamp's closes arrive as one column (``set_column``): the column is kept as it came
and an asset's mark is read out of it when asked. Marking 500 assets is then one reference,
not 500 dict writes and 500 new floats, which cost ~145 µs of a live frame's ~800 µs in situ
(cold caches after the feed's gap between frames: BENCHMARKS.md, issue 14 round 4). A later
column naming the same assets (a stream or a complete panel repeats its universe) replaces
it; one naming others folds it into the dict first, so an asset without a bar this
timestamp keeps its older mark. A single mark (``marks[a] = x``) folds the column too.

It is a ``MutableMapping``: ``get``, ``in``, ``[]``, iteration and ``dict(marks)`` see the
column and the dict as one mapping of floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any, TypeVar, overload

import numpy as np

from tradeloop.market_event import floats
from tradeloop.rows import RowFinder

__all__ = ["Marks"]

_T = TypeVar("_T")


class Marks(MutableMapping[str, float]):
    """Each asset's latest mark: a dict, and the latest column of closes kept as it came."""

    __slots__ = ("_base", "_rows", "_values")

    def __init__(self, marks: Mapping[str, float] | None = None) -> None:
        self._base: dict[str, float] = dict(marks or {})
        self._rows = RowFinder()  # the column's assets (distinct), in step with its closes
        self._values: Sequence[float] | np.ndarray[Any, Any] = ()

    def set_column(
        self, asset_ids: list[str], closes: Sequence[float] | np.ndarray[Any, Any]
    ) -> None:
        """The closes of one timestamp's bars (``asset_ids`` distinct, in step with
        ``closes``): each becomes its asset's mark. Both are kept, not copied: the caller
        must not change them afterwards (a run's bars never change)."""
        if not self._rows.same(asset_ids):  # other assets: the old column into the dict
            self._fold()
            self._rows.point(asset_ids)
        self._values = closes

    def _fold(self) -> None:
        """Move the column into the dict (its marks are newer than the dict's)."""
        rows = self._rows
        if rows.ids:
            self._base.update(zip(rows.ids, floats(self._values), strict=True))
            rows.point([])
            self._values = ()

    @overload
    def get(self, asset_id: str, /) -> float | None: ...
    @overload
    def get(self, asset_id: str, default: float, /) -> float: ...
    @overload
    def get(self, asset_id: str, default: _T, /) -> float | _T: ...

    def get(self, asset_id: str, default: Any = None, /) -> Any:
        rows = self._rows
        if rows.ids:  # (no column: a plain dict lookup)
            row = rows.find(asset_id)
            if row >= 0:
                return float(self._values[row])
        return self._base.get(asset_id, default)

    def __getitem__(self, asset_id: str) -> float:
        rows = self._rows
        if rows.ids:
            row = rows.find(asset_id)
            if row >= 0:
                return float(self._values[row])
        return self._base[asset_id]

    def __contains__(self, asset_id: object) -> bool:
        rows = self._rows
        if rows.ids and isinstance(asset_id, str) and rows.find(asset_id) >= 0:
            return True
        return asset_id in self._base

    def __setitem__(self, asset_id: str, mark: float) -> None:
        if self._rows.ids:
            self._fold()
        self._base[asset_id] = mark

    def __delitem__(self, asset_id: str) -> None:
        self._fold()
        del self._base[asset_id]

    def __iter__(self) -> Iterator[str]:
        self._fold()
        return iter(self._base)

    def __len__(self) -> int:
        self._fold()
        return len(self._base)

    def __repr__(self) -> str:
        return f"Marks({self.as_dict()!r})"

    def plain(self) -> dict[str, float]:
        """The dict the marks are kept in, with the column folded into it: for a loop that
        sets one mark at a time (valid until the next ``set_column``)."""
        self._fold()
        return self._base

    def as_dict(self) -> dict[str, float]:
        """A plain dict of every mark (a copy)."""
        self._fold()
        return dict(self._base)
