"""examples/06_confidence_sizing.py: every order is the sizing rule recomputed from the data."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import DATA, load_example, number, run_script


def test_confidence_sizing_orders_are_the_target_rule_recomputed_and_printed(
    tmp_path: Path,
) -> None:
    run = run_script("06_confidence_sizing.py", tmp_path)
    run.assert_ok()
    bars = pl.read_parquet(DATA / "sample.parquet")
    result, _ = load_example("06_confidence_sizing.py").backtest(bars)

    # ml_pred > 0.65 and confidence > 0.70: trade to 20 % × confidence of equity (whole shares
    # at the close, from what is held); else ml_pred < 0.45 while long: sell it all.
    ledger = Ledger(result.fills, 100_000.0)
    expected = []
    entries = resizes_up = resizes_down = 0
    first_entries = []
    for ts, rows in by_timestamp(bars):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        for r in rows:
            asset, held = r["asset_id"], ledger.held(r["asset_id"])
            if r["ml_pred"] > 0.65 and r["confidence"] > 0.70:
                target = whole_shares(0.20 * r["confidence"] * ledger.equity(), r["close"])
                if target != held:
                    side = "buy" if target > held else "sell"
                    expected.append((ts, asset, side, abs(target - held), "strategy"))
                    entries += held == 0
                    resizes_up += held != 0 and side == "buy"
                    resizes_down += side == "sell"
                    if held == 0 and len(first_entries) < 5:
                        first_entries.append((ts, asset, r["confidence"], target))
            elif r["ml_pred"] < 0.45 and held > 0:
                expected.append((ts, asset, "sell", held, "signal_exit"))
    columns = ("submitted_at", "asset_id", "side", "qty", "reason")
    assert sorted(result.orders.select(columns).iter_rows()) == sorted(expected)
    assert entries > 100
    assert resizes_up > 10
    assert resizes_down > 10

    out = run.stdout
    assert number(r"final value ([\d,.]+)", out) == pytest.approx(result["final_value"], abs=0.005)
    printed = re.search(r"(\d+) entries, (\d+) resizes \((\d+) up, (\d+) down\), (\d+) exits", out)
    assert printed, out
    exits = sum(e[4] == "signal_exit" for e in expected)
    counts = (entries, resizes_up + resizes_down, resizes_up, resizes_down, exits)
    assert tuple(int(g) for g in printed.groups()) == counts
    rows = re.findall(
        r"(\d{4}-\d\d-\d\d)  (\w+)  confidence ([\d.]+)  target +([\d.]+)%  (\d+) sh", out
    )
    assert [(d, a, float(c), float(w), float(q)) for d, a, c, w, q in rows] == [
        (f"{ts:%Y-%m-%d}", a, round(c, 2), round(20 * c, 2), q) for ts, a, c, q in first_entries
    ]
