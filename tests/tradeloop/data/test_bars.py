"""BarTable: replay order, and the per-asset row order the results read (worked by hand)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloop.data.bars import BarTable

NS_DAY = 86_400 * 1_000_000_000


def table(rows: list[tuple[int, str]]) -> BarTable:
    frame = pl.DataFrame(
        {"ts_ns": [d * NS_DAY for d, _ in rows], "asset_id": [a for _, a in rows]}
    ).with_columns(
        *(pl.lit(1.0).alias(c) for c in ("open", "high", "low", "close", "volume")),
    )
    return BarTable.from_frame(frame)


@pytest.mark.parametrize(
    ("rows", "asset_rows", "bar_index", "asset_keys"),
    [
        # complete panel (every asset every day): rows k × 2 + code, by asset then time
        (
            [(0, "A"), (0, "B"), (1, "A"), (1, "B"), (2, "A"), (2, "B")],
            [0, 2, 4, 1, 3, 5],
            [0, 0, 1, 1, 2, 2],
            [0, 1, 2, 3, 4, 5],
        ),
        # ragged, given out of order: B misses day 1; keys are code × 3 + day index
        (
            [(2, "B"), (0, "A"), (1, "A"), (0, "B"), (2, "A")],
            [0, 2, 3, 1, 4],
            [0, 0, 1, 2, 1],
            [0, 1, 2, 3, 5],
        ),
    ],
)
def test_bar_table_asset_rows_list_each_asset_in_time_order(
    rows: list[tuple[int, str]], asset_rows: list[int], bar_index: list[int], asset_keys: list[int]
) -> None:
    t = table(rows)
    assert t.asset_rows.tolist() == asset_rows
    assert t.bar_index.tolist() == bar_index
    assert t.asset_keys.tolist() == asset_keys
    assert np.all(np.diff(t.ts_ns) >= 0)


_ROWS = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["A", "B", "C"])), min_size=1, max_size=12
).map(lambda rows: list(dict.fromkeys(rows)))  # one bar per (day, asset)


@given(rows=_ROWS, in_replay_order=st.booleans(), data=st.data())
def test_bar_table_any_frame_matches_a_sort_by_time_then_asset(
    rows: list[tuple[int, str]], in_replay_order: bool, data: st.DataObject
) -> None:
    # the reference is the definition: rows sorted by (time, asset name), codes the rank of
    # the name, bar index the asset's earlier rows; a complete panel in replay order takes
    # the arithmetic path (nothing stored per row), any other the sort
    if in_replay_order:
        rows = sorted(rows)
    t = table(rows)
    expected = sorted(rows)
    names = sorted({a for _, a in rows})
    ts = [d * NS_DAY for d, _ in expected]
    codes = [names.index(a) for _, a in expected]
    counts = [sum(1 for _, b in expected[:i] if b == a) for i, (_, a) in enumerate(expected)]
    assert t.asset_ids == tuple(names)
    assert t.ts_ns.tolist() == ts
    assert t.asset_code.tolist() == codes
    assert t.bar_index.tolist() == counts
    per_asset = sorted(range(len(expected)), key=lambda i: (expected[i][1], expected[i][0]))
    assert t.asset_rows.tolist() == per_asset
    # any rows read alone (a range, or row numbers in any order) give the same values
    n = len(expected)
    a = data.draw(st.integers(0, n))
    b = data.draw(st.integers(a, n))
    picked = data.draw(st.lists(st.integers(0, n - 1), max_size=6))
    for rows_of, want in ((slice(a, b), range(a, b)), (np.array(picked, dtype=np.int64), picked)):
        assert t.ts_ns_of(rows_of).tolist() == [ts[i] for i in want]
        assert t.asset_code_of(rows_of).tolist() == [codes[i] for i in want]
        assert t.bar_index_of(rows_of).tolist() == [counts[i] for i in want]


@pytest.mark.parametrize(
    "rows",
    [
        [(0, "A"), (0, "B"), (1, "A"), (1, "C")],  # same count per day, another asset on day 1
        [(0, "B"), (0, "A"), (1, "B"), (1, "A")],  # complete, but not in asset order
        [(0, "A"), (0, "B"), (1, "A"), (1, "B"), (1, "C"), (2, "A")],  # ragged
    ],
)
def test_bar_table_not_a_sorted_complete_panel_takes_the_general_path(
    rows: list[tuple[int, str]],
) -> None:
    t = table(rows)
    expected = sorted(rows)
    assert t.asset_code.tolist() == [t.asset_ids.index(a) for _, a in expected]
    assert t.complete == (len(rows) == len({d for d, _ in rows}) * len(t.asset_ids))
