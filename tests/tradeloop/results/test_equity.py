"""The vectorised equity record (holding stretches marked at each asset's latest close)
against a per-timestamp loop over the bars, on random fills over a ragged panel."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tradeloop.results.random_fills import NS_DAY, T0, fill_lists, make_fill
from tradeloop.data.bars import BarTable
from tradeloop.events import Fill
from tradeloop.results.equity import equity_record


def reference_equity(table: BarTable, fills: list[Fill], cash: float) -> list[float]:
    """At each timestamp: cash after its fills + Σ qty × latest close so far (0 before one)."""
    out, qty, mark, j = [], {}, {}, 0
    for k, ts in enumerate(table.unique_ts_ns.tolist()):
        for row in range(int(table.ts_bounds[k]), int(table.ts_bounds[k + 1])):
            mark[table.asset_ids[table.asset_code[row]]] = float(table.close[row])
        while j < len(fills) and fills[j].ts_ns <= ts:
            f = fills[j]
            qty[f.asset_id] = qty.get(f.asset_id, 0.0) + f.signed_qty
            cash -= f.signed_qty * f.price + f.commission
            j += 1
        out.append(cash + sum(q * mark.get(a, 0.0) for a, q in qty.items()))
    return out


@settings(max_examples=200, deadline=None)
@given(fill_lists, st.integers(0, 2**31), st.booleans())
def test_equity_record_random_fills_equals_the_per_timestamp_loop(
    spec: list[tuple[str, float, float, float]], seed: int, complete: bool
) -> None:
    rng = np.random.default_rng(seed)
    # a ragged panel (some assets miss some days, so marks are carried forward), or complete
    rows = [
        {"ts_ns": T0 + d * NS_DAY, "asset_id": a, "close": float(rng.uniform(50, 150))}
        for d in range(45)
        for a in ("A", "B", "C")
        if complete or rng.random() < 0.7 or d == 0
    ]
    frame = pl.DataFrame(rows).with_columns(
        open=pl.col("close"), high=pl.col("close"), low=pl.col("close"), volume=pl.lit(1.0)
    )
    table = BarTable.from_frame(frame)
    fills = [make_fill(i, a, q, p, c) for i, (a, q, p, c) in enumerate(spec)]
    record = equity_record(table, fills, 10_000.0)
    assert record.equity.tolist() == pytest.approx(reference_equity(table, fills, 10_000.0))
