"""Marks: a column of closes kept as it came reads exactly as the dict of marks it replaces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.broker.marks import Marks

ASSETS = ["A", "B", "C", "D", "E"]


def test_a_column_marks_its_assets_and_older_marks_stay() -> None:
    marks = Marks({"Z": 1.5})
    marks.set_column(["A", "B"], np.array([10.0, 20.0]))
    assert marks.get("A") == 10.0
    assert type(marks.get("A")) is float
    assert marks["B"] == 20.0
    assert marks.get("Z") == 1.5
    assert marks.get("Q") is None
    assert marks.get("Q", 7.0) == 7.0
    assert "A" in marks
    assert "Z" in marks
    assert "Q" not in marks
    with pytest.raises(KeyError):
        marks["Q"]
    # the next timestamp names other assets: A keeps the mark of its last bar
    marks.set_column(["B", "C"], [21.0, 30.0])
    assert marks.as_dict() == {"Z": 1.5, "A": 10.0, "B": 21.0, "C": 30.0}
    assert marks == {"Z": 1.5, "A": 10.0, "B": 21.0, "C": 30.0}
    assert len(marks) == 4
    assert sorted(marks) == ["A", "B", "C", "Z"]


def test_the_same_assets_again_replace_the_column_without_a_fold() -> None:
    ids = ["A", "B", "C"]
    marks = Marks()
    marks.set_column(ids, np.array([1.0, 2.0, 3.0]))
    marks.set_column(ids, np.array([4.0, 5.0, 6.0]))  # the same list (a stream's)
    marks.set_column(list(ids), np.array([7.0, 8.0, 9.0]))  # equal names, another list
    assert marks.plain() == {"A": 7.0, "B": 8.0, "C": 9.0}


def test_a_single_mark_wins_over_the_column_it_follows() -> None:
    marks = Marks()
    marks.set_column(["A", "B"], np.array([1.0, 2.0]))
    marks["A"] = 5.0
    assert marks.as_dict() == {"A": 5.0, "B": 2.0}
    del marks["B"]
    assert marks.as_dict() == {"A": 5.0}


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("column"),
            st.lists(st.sampled_from(ASSETS), unique=True, min_size=1),
            st.lists(st.floats(allow_nan=False, width=64), min_size=5, max_size=5),
            st.booleans(),
        ),
        st.tuples(st.just("set"), st.sampled_from(ASSETS), st.floats(allow_nan=False)),
        st.tuples(st.just("read"), st.sampled_from([*ASSETS, "Q"])),
    ),
    max_size=40,
)


@given(_ops)
@settings(max_examples=300, deadline=None)
def test_marks_read_as_the_dict_of_every_latest_close(ops: list[tuple]) -> None:
    """Any order of columns (as arrays or lists), single marks and reads (enough of them
    to index a column) gives what a dict updated with every close gives."""
    marks, model = Marks(), {}
    for op in ops:
        if op[0] == "column":
            _, ids, values, as_array = op
            closes = values[: len(ids)]
            marks.set_column(ids, np.array(closes) if as_array else closes)
            model.update(zip(ids, closes, strict=True))
        elif op[0] == "set":
            marks[op[1]] = op[2]
            model[op[1]] = op[2]
        else:
            asset = op[1]
            assert marks.get(asset) == model.get(asset)
            assert (asset in marks) == (asset in model)
    assert {a: marks.get(a) for a in ASSETS} == {a: model.get(a) for a in ASSETS}
    assert marks.as_dict() == model
