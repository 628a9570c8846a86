"""Round trips: FIFO matching, partial closes, flips, commission allocation — by hand; and the
vectorised matching against a FIFO loop that follows the rule one fill at a time, on random
fills (hypothesis): long and short, partial closes, flips through zero, fractional sizes,
several assets."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings

from tests.tradeloop.results.random_fills import fill_lists, make_fill
from tradeloop.events import Fill, Side
from tradeloop.results.trades import round_trips

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def fill(
    i: int, side: Side, qty: float, price: float, commission: float = 0.0, reason: str = "strategy"
) -> Fill:
    return Fill(i, "X", side, qty, price, commission, 0.0, T0 + timedelta(days=i), i, i, reason)


def test_round_trips_match_first_in_first_out() -> None:
    trades = round_trips(
        [
            fill(0, Side.BUY, 10, 100.0),
            fill(1, Side.BUY, 10, 110.0),
            fill(3, Side.SELL, 15, 120.0, reason="take_profit"),
        ]
    )
    rows = trades.select(
        "qty", "entry_price", "exit_price", "pnl", "bars_held", "exit_reason"
    ).rows()
    # the first lot (10 @ 100) closes whole, then 5 of the second lot (@ 110)
    assert rows == [
        (10.0, 100.0, 120.0, 200.0, 3, "take_profit"),
        (5.0, 110.0, 120.0, 50.0, 2, "take_profit"),
    ]


def test_round_trips_allocate_commission_per_unit_from_both_fills() -> None:
    trades = round_trips([fill(0, Side.BUY, 10, 100.0, 2.0), fill(1, Side.SELL, 4, 90.0, 1.0)])
    row = trades.row(0, named=True)
    # entry 0.2/share × 4 + exit 1.0 for all 4 = 1.8; gross 4 × −10 = −40
    assert row["commission"] == pytest.approx(1.8)
    assert row["gross_pnl"] == pytest.approx(-40.0)
    assert row["pnl"] == pytest.approx(-41.8)
    assert row["return_pct"] == pytest.approx(-0.1)


def test_round_trips_flip_closes_long_and_opens_short() -> None:
    trades = round_trips(
        [
            fill(0, Side.BUY, 5, 100.0),
            fill(1, Side.SELL, 8, 104.0),  # close 5 long, open 3 short at 104
            fill(2, Side.BUY, 3, 100.0),  # cover the short
        ]
    )
    assert trades.select("direction", "qty", "pnl").rows() == [
        ("long", 5.0, 20.0),
        ("short", 3.0, 12.0),
    ]
    assert trades["return_pct"][1] == pytest.approx(4 / 104)


def test_round_trips_open_lots_are_not_trades() -> None:
    assert round_trips([fill(0, Side.BUY, 5, 100.0)]).height == 0


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
