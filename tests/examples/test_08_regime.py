"""examples/08_regime.py: the regime labels and every order recomputed in plain Python."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import DATA, load_example, number, run_script


def test_regime_strategy_labels_orders_and_printed_table_are_recomputed(tmp_path: Path) -> None:
    run = run_script("08_regime.py", tmp_path)
    run.assert_ok()
    example = load_example("08_regime.py")
    bars, vix = pl.read_parquet(DATA / "sample.parquet"), pl.read_parquet(DATA / "vix.parquet")
    context = example.market_context(bars, vix)
    result = example.backtest(bars, context)

    # The regime, from scratch: an equal-weight index of close / first close; "bull" above
    # its trailing 50-day mean (today included), "bear" otherwise; no label for 49 days.
    steps = by_timestamp(bars)
    first = {r["asset_id"]: r["close"] for r in steps[0][1]}
    index = [sum(r["close"] / first[r["asset_id"]] for r in rows) / len(rows) for _, rows in steps]
    regimes = [
        None if k < 49 else ("bull" if index[k] > sum(index[k - 49 : k + 1]) / 50 else "bear")
        for k in range(len(index))
    ]
    assert context["regime"].to_list() == regimes
    levels = vix["VIX"].to_list()

    # VIX > 30: sell what is held. Bull and ml_pred > 0.60: trade to 20 % of equity; bear and
    # ml_pred > 0.75: to 10 %; else ml_pred < 0.45 while long: sell. Whole shares at the close.
    ledger = Ledger(result.fills, 100_000.0)
    expected = []
    invested = defaultdict(list)
    for k, (ts, rows) in enumerate(steps):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        equity, regime = ledger.equity(), regimes[k]
        for r in rows:
            asset, pred, held = r["asset_id"], r["ml_pred"], ledger.held(r["asset_id"])
            weight = (
                0.20
                if regime == "bull" and pred > 0.60
                else 0.10
                if regime == "bear" and pred > 0.75
                else None
            )
            if levels[k] > 30:
                if held > 0:
                    expected.append((ts, asset, "sell", held, "vix_risk_off"))
            elif weight is not None:
                delta = whole_shares(weight * equity, r["close"]) - held
                if delta:
                    side = "buy" if delta > 0 else "sell"
                    expected.append((ts, asset, side, abs(delta), "strategy"))
            elif pred < 0.45 and held > 0:
                expected.append((ts, asset, "sell", held, "signal_exit"))
        state = "VIX > 30" if levels[k] > 30 else regime or "warm-up"
        gross = sum(abs(q) * ledger.marks[a] for a, q in ledger.positions.items())
        invested[state].append(gross / equity)
    columns = ("submitted_at", "asset_id", "side", "qty", "reason")
    assert sorted(result.orders.select(columns).iter_rows()) == sorted(expected)
    regime_at = {ts: regimes[k] for k, (ts, _) in enumerate(steps)}
    assert [e for e in expected if e[2] == "buy" and regime_at[e[0]] == "bear"]  # bears trade
    assert {e[4] for e in expected} == {"strategy", "vix_risk_off", "signal_exit"}

    table = re.findall(r"^  (VIX > 30|bear|bull|warm-up) +(\d+) +([\d.]+)%$", run.stdout, re.M)
    assert {state: (int(n), float(pct)) for state, n, pct in table} == {
        state: (len(values), round(100 * sum(values) / len(values), 1))
        for state, values in invested.items()
    }
    assert number(r"final value ([\d,.]+)", run.stdout) == pytest.approx(
        result["final_value"], abs=0.005
    )
