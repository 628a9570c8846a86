"""examples/07_ensemble_vote.py: the votes and every order recomputed from the three models."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import DATA, load_example, number, run_script

MODELS = ("model_a_pred", "model_b_pred", "model_c_pred")


def test_ensemble_vote_orders_are_the_majority_rule_recomputed_and_printed(
    tmp_path: Path,
) -> None:
    run = run_script("07_ensemble_vote.py", tmp_path)
    run.assert_ok()
    example = load_example("07_ensemble_vote.py")
    bars = example.with_three_models(pl.read_parquet(DATA / "sample.parquet"))
    result = example.backtest(bars)

    # Votes = how many of the three predictions are above 0.5. Two or more while flat: buy
    # 15 % × their average of equity (whole shares at the close); one or none while long: sell.
    ledger = Ledger(result.fills, 100_000.0)
    expected, tally = [], Counter[int]()
    for ts, rows in by_timestamp(bars):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        for r in rows:
            predictions = [r[name] for name in MODELS]
            votes = sum(p > 0.5 for p in predictions)
            tally[votes] += 1
            held = ledger.held(r["asset_id"])
            if votes >= 2 and held == 0:
                average = sum(predictions) / 3
                qty = whole_shares(0.15 * average * ledger.equity(), r["close"])
                expected.append((ts, r["asset_id"], "buy", qty, "strategy"))
            elif votes <= 1 and held > 0:
                expected.append((ts, r["asset_id"], "sell", held, "majority_exit"))
    columns = ("submitted_at", "asset_id", "side", "qty", "reason")
    assert sorted(result.orders.select(columns).iter_rows()) == sorted(expected)
    assert len(expected) > 500

    printed = dict(re.findall(r"(\d) of 3: +([\d,]+) bars", run.stdout))
    assert {int(n): int(c.replace(",", "")) for n, c in printed.items()} == dict(tally)
    assert set(tally) == {0, 1, 2, 3}  # the models disagree sometimes: the vote matters
    entries = sum(e[4] == "strategy" for e in expected)
    assert f"orders: {entries} entries, {len(expected) - entries} exits" in run.stdout
    assert number(r"final value ([\d,.]+)", run.stdout) == pytest.approx(
        result["final_value"], abs=0.005
    )
