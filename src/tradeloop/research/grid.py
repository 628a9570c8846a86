"""Parameter grids: the combinations a sweep runs, in a fixed order. Pure.

A grid is either a dict of lists (every combination, the last name varying fastest, like
``itertools.product``) or an explicit list of dicts (run as given).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["Grid", "expand_grid"]

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


def expand_grid(grid: Grid) -> list[dict[str, Any]]:
    """Every parameter combination of ``grid``, as keyword-argument dicts, in grid order."""
    if isinstance(grid, Mapping):
        return _product(grid)
    if isinstance(grid, str | bytes) or not isinstance(grid, Sequence):
        raise ConfigError(
            f"grid must be a dict of lists ({{'entry': [0.6, 0.7]}}) or a list of dicts, "
            f"got {type(grid).__name__}"
        )
    combinations = [dict(item) for item in grid if isinstance(item, Mapping)]
    if len(combinations) != len(grid):
        raise ConfigError("a grid given as a list must hold only dicts of parameters")
    if not combinations:
        raise ConfigError("the grid is empty: give at least one parameter combination")
    names = list(combinations[0])
    for i, combination in enumerate(combinations):
        _check_names(combination)
        if list(combination) != names:
            raise ConfigError(
                f"grid[{i}] has parameters {sorted(combination)}, grid[0] has {sorted(names)}; "
                "every combination needs the same names (they become the table's columns)"
            )
    return combinations


def _product(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    _check_names(grid)
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ConfigError(
                f"grid[{name!r}] must be a list of values to try, got {values!r}; "
                f"for a fixed value write [{values!r}]"
            )
        if not values:
            raise ConfigError(f"grid[{name!r}] is empty: give at least one value")
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def _check_names(params: Mapping[str, Any]) -> None:
    bad = [name for name in params if not isinstance(name, str) or not name.isidentifier()]
    if bad:
        raise ConfigError(
            f"grid parameter names {bad!r} are not valid keyword names; the factory is called "
            "as strategy_factory(**params)"
        )
