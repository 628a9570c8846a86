"""The vectorised round trips against a FIFO loop that follows the rule one fill at a time,
on random fills (hypothesis): long and short, partial closes, flips through zero, fractional
sizes, several assets."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings

from tests.tradeloop.results.random_fills import fill_lists, make_fill
from tradeloop.events import Fill, Side
from tradeloop.results.trades import round_trips


def reference_trips(fills: list[Fill]) -> list[tuple[object, ...]]:
    """FIFO per asset, one fill at a time: the rule of ``results.trades``."""
    lots: dict[str, deque[list[float]]] = {}
    rows = []
    for f in fills:
        queue = lots.setdefault(f.asset_id, deque())
        left = f.qty if f.side is Side.BUY else -f.qty
        cpu = f.commission / f.qty
        while queue and abs(left) > 1e-9 and (queue[0][0] > 0) != (left > 0):
            lot = queue[0]
            matched = min(abs(left), abs(lot[0]))
            sign = 1.0 if lot[0] > 0 else -1.0
            rows.append(
                (
                    f.asset_id,
                    "long" if sign > 0 else "short",
                    matched,
                    lot[1],
                    f.price,
                    matched * (f.price - lot[1]) * sign,
                    matched * (lot[2] + cpu),
                    int(f.bar_index - lot[3]),
                )
            )
            lot[0] -= sign * matched
            left += sign * matched
            if abs(lot[0]) <= 1e-9:
                queue.popleft()
        if abs(left) > 1e-9:
            queue.append([left, f.price, cpu, f.bar_index])
    return rows


@settings(max_examples=300, deadline=None)
@given(fill_lists)
def test_round_trips_random_fills_equal_the_fifo_loop(
    spec: list[tuple[str, float, float, float]],
) -> None:
    fills = [make_fill(i, a, q, p, c) for i, (a, q, p, c) in enumerate(spec)]
    got = round_trips(fills)
    expected = reference_trips(fills)
    assert got.height == len(expected)
    rows = got.select(
        "asset_id", "direction", "qty", "entry_price", "exit_price", "gross_pnl", "commission",
        "bars_held",
    ).rows()  # fmt: skip
    for mine, theirs in zip(rows, expected, strict=True):
        assert mine[:2] == theirs[:2]
        assert mine[7] == theirs[7]
        assert mine[2:7] == pytest.approx(theirs[2:7], rel=1e-9, abs=1e-9)
