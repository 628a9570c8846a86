"""RowFinder: where an asset is in one timestamp's list of asset ids. Pure.

Both the marks (the latest column of closes) and a bar block (the rows of one timestamp)
answer "which row is this asset's?" many times a timestamp when orders fill. The first
few lookups scan the list (cheap for a few open orders); after that the list is indexed
once (asset -> row). The index is kept while the layout stays the same: a complete panel,
or a stream repeating its universe, lists the same assets in the same order at every
timestamp, so ``point`` compares the new list with the old one (element by element, the
same string objects: a few µs for 500 assets) instead of indexing it again (~20 µs).
"""

from __future__ import annotations

__all__ = ["RowFinder"]

SCANS = 4  # lookups in one layout by scanning it, before it is indexed by asset


class RowFinder:
    """The row of each asset in ``ids`` (distinct asset ids), or -1."""

    __slots__ = ("_index", "_scans", "ids")

    def __init__(self, ids: list[str] | None = None) -> None:
        self.ids: list[str] = ids if ids is not None else []
        self._index: dict[str, int] | None = None  # asset -> row, made once it pays
        self._scans = 0

    def same(self, ids: list[str]) -> bool:
        """Whether ``ids`` are the assets of ``self.ids`` in the same order (the same layout)."""
        return ids is self.ids or ids == self.ids

    def point(self, ids: list[str]) -> None:
        """Look rows up in ``ids`` from now on. The same layout as before keeps the index;
        another drops it."""
        if not self.same(ids):
            self._index, self._scans = None, 0
        self.ids = ids

    def find(self, asset_id: str) -> int:
        index = self._index
        if index is not None:
            return index.get(asset_id, -1)
        ids = self.ids
        if self._scans < SCANS:
            self._scans += 1
            try:
                return ids.index(asset_id)
            except ValueError:
                return -1
        index = self._index = dict(zip(ids, range(len(ids)), strict=True))
        return index.get(asset_id, -1)
