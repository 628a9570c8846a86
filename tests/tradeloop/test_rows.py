"""RowFinder (the row of an asset in one timestamp's asset list, an index kept while the
layout repeats) and the bar block that uses it: any run of layouts and lookups answers what
``list.index`` answers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.rows import SCANS, RowFinder
from tradeloop.runtime.dispatch import BarBlock

ASSETS = ["A", "B", "C", "D", "E", "F"]


def _row(ids: list[str], asset: str) -> int:
    return ids.index(asset) if asset in ids else -1


def test_the_same_layout_keeps_its_index_and_another_drops_it() -> None:
    finder = RowFinder(["A", "B", "C"])
    for _ in range(SCANS + 1):  # the scans, then the lookup that indexes
        assert finder.find("C") == 2
    index = finder._index
    assert index == {"A": 0, "B": 1, "C": 2}
    finder.point(["A", "B", "C"])  # equal, another list: the next timestamp of a panel
    assert finder._index is index
    assert finder.find("B") == 1
    finder.point(["C", "A"])  # another layout: scanned again, never the old rows
    assert finder._index is None
    assert finder.find("A") == 1
    assert finder.find("B") == -1


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("point"), st.permutations(ASSETS), st.integers(0, len(ASSETS))),
            st.tuples(st.just("find"), st.sampled_from([*ASSETS, "Q"])),
        ),
        max_size=60,
    )
)
@settings(max_examples=300, deadline=None)
def test_rows_are_what_list_index_says(ops: list[tuple]) -> None:
    finder, ids = RowFinder(), []
    for op in ops:
        if op[0] == "point":
            ids = list(op[1][: op[2]])
            finder.point(ids)
        else:
            assert finder.find(op[1]) == _row(ids, op[1])


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(ASSETS), unique=True, min_size=2),
            st.lists(st.sampled_from([*ASSETS, "Q"]), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=12,
    )
)
@settings(max_examples=200, deadline=None)
def test_a_block_finds_each_timestamps_bars_whatever_the_layouts(
    stamps: list[tuple[list[str], list[str]]],
) -> None:
    """Timestamps of one block with repeated, shrunk and reordered asset lists, each looked
    up often enough to be indexed: every bar is its own row's, never a row of the layout
    before it."""
    ids = [asset for layout, _ in stamps for asset in layout]
    n = len(ids)
    opens = np.arange(n, dtype=np.float64) + 100.0
    arrays = {
        "open": opens,
        "high": opens + 1,
        "low": opens - 1,
        "close": opens + 0.5,
        "volume": np.full(n, 10.0),
    }
    empty: dict[str, list[float]] = {k: [] for k in arrays}
    block = BarBlock(ids, empty, np.arange(n), {}, arrays, ())
    start = 0
    for ts, (layout, lookups) in enumerate(stamps):
        stop = start + len(layout)
        block.move(ts, start, stop)
        for asset in lookups:
            bar = block.bar(asset)
            if asset not in layout:
                assert bar is None
                continue
            row = start + layout.index(asset)
            assert bar == (100.0 + row, 101.0 + row, 99.0 + row, 100.5 + row, 10.0, row)
        start = stop


@given(
    universe=st.lists(st.sampled_from(ASSETS), unique=True, min_size=1),
    lookups=st.lists(st.lists(st.sampled_from([*ASSETS, "Q"]), max_size=12), min_size=1),
)
@settings(max_examples=100, deadline=None)
def test_a_complete_panels_block_finds_bars_in_its_one_layout(
    universe: list[str], lookups: list[list[str]]
) -> None:
    """A block whose every timestamp lists ``universe`` (a complete panel's: the layout is
    given once, never compared again) finds each bar at timestamp k in row k × n + code."""
    n, n_ts = len(universe), len(lookups)
    opens = np.arange(n * n_ts, dtype=np.float64) + 100.0
    arrays = {
        "open": opens,
        "high": opens + 1,
        "low": opens - 1,
        "close": opens + 0.5,
        "volume": np.full(n * n_ts, 10.0),
    }
    empty: dict[str, list[float]] = {k: [] for k in arrays}
    bar_index = np.arange(n * n_ts) // n
    block = BarBlock(universe * n_ts, empty, bar_index, {}, arrays, (), layout=universe)
    for k, assets in enumerate(lookups):
        block.move(k, k * n, (k + 1) * n)
        for asset in assets:
            bar = block.bar(asset)
            if asset not in universe:
                assert bar is None
                continue
            row = k * n + universe.index(asset)
            assert bar == (100.0 + row, 101.0 + row, 99.0 + row, 100.5 + row, 10.0, k)


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(ASSETS), unique=True, min_size=1),
            st.sampled_from(["same list", "equal copy", "as drawn"]),
            st.lists(st.sampled_from([*ASSETS, "Q"]), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=10,
    )
)
@settings(max_examples=200, deadline=None)
def test_blocks_sharing_one_finder_find_each_timestamps_own_rows(
    stamps: list[tuple[list[str], str, list[str]]],
) -> None:
    """A stream's blocks (one a timestamp) share the runtime's finder: the list it indexed
    handed over again, an equal copy of it, or another layout, every bar is its own row's."""
    finder, previous = RowFinder(), None
    for ts, (drawn, how, lookups) in enumerate(stamps):
        ids = drawn
        if previous is not None and how != "as drawn":
            ids = previous if how == "same list" else list(previous)
        n = len(ids)
        opens = np.arange(n, dtype=np.float64) + 10.0 * ts
        arrays = {"open": opens, "high": opens, "low": opens, "close": opens, "volume": opens}
        block = BarBlock.single(
            ts, ids, arrays, np.zeros(n, dtype=np.int64), needs_rows=False, finder=finder
        )
        for asset in lookups:
            bar = block.bar(asset)
            if asset not in ids:
                assert bar is None
                continue
            assert bar is not None
            assert bar[0] == 10.0 * ts + ids.index(asset)
        previous = ids
