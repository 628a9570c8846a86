"""Grids: a dict of lists is the cartesian product (last name fastest); a list runs as given."""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.errors import ConfigError
from tradeloop.research import expand_grid


def test_expand_grid_dict_is_the_product_with_the_last_name_varying_fastest() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x", "y", "z"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]


def test_expand_grid_list_of_dicts_runs_as_given() -> None:
    combinations = [{"a": 2, "b": 0.1}, {"a": 1, "b": 0.3}]
    assert expand_grid(combinations) == combinations


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"a": 0.5}, r"must be a list of values to try.*write \[0.5\]"),
        ({"a": "abc"}, "must be a list of values"),
        ({"a": []}, "is empty"),
        ([], "the grid is empty"),
        ([{"a": 1}, {"b": 2}], "same names"),
        ([{"a": 1}, 3], "only dicts"),
        ({"not a name": [1]}, "not valid keyword names"),
        ("a=1", "dict of lists"),
    ],
)
def test_expand_grid_malformed_raises_config_error(grid: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        expand_grid(grid)
