"""examples/05_multi_asset_shared_context.py: the shared-context rule recomputed from the data."""

from __future__ import annotations

import re
import runpy
from typing import Any

import pandas as pd
import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import EXAMPLES, Run, run_script

NAME = "05_multi_asset_shared_context.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script(NAME, tmp_path_factory.mktemp("multi_asset"))


@pytest.fixture(scope="module")
def script() -> dict[str, Any]:
    """The example's globals after running it in this process (it writes no files)."""
    return runpy.run_path(str(EXAMPLES / NAME))


def test_multi_asset_runs_as_a_script_and_reports_its_context_series(run: Run) -> None:
    run.assert_ok()
    assert run.seconds < 20
    assert "Context series: VIX, SPY_trend, breadth" in run.stdout


def test_multi_asset_orders_are_the_rule_recomputed_from_data_and_shared_context(
    run: Run, script: dict[str, Any]
) -> None:
    results = script["results"]
    frames = []
    for symbol in script["stocks"]:
        df = script["load_stock"](symbol)
        df["ml_pred"] = script["my_model"].predict(symbol, df)
        frames.append(
            pl.from_pandas(df.rename_axis("timestamp").reset_index()).with_columns(
                asset_id=pl.lit(symbol)
            )
        )
    vix: pd.Series = script["vix"]
    breadth: pd.Series = script["breadth"]

    # The design doc's rule, per asset and bar, with positions and equity from the fills:
    # VIX > 30: sell half of what is held (whole shares), buy nothing; breadth < 0.3: nothing;
    # else a prediction > 0.8 while flat buys 2 % of equity (1 % once VIX >= 20).
    ledger = Ledger(results.fills, 100_000.0)
    expected = []
    for ts, rows in by_timestamp(pl.concat(frames)):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        day = pd.Timestamp(ts.replace(tzinfo=None))
        level, share = vix[day], breadth[day]
        for r in rows:
            asset, held = r["asset_id"], ledger.held(r["asset_id"])
            if level > 30:
                qty = float(int(held * 0.5))
                if qty > 0:
                    expected.append((ts, asset, "sell", qty))
            elif share and share < 0.3:
                continue
            elif r["ml_pred"] > 0.8 and held == 0:
                size = 0.02 if level < 20 else 0.01
                expected.append(
                    (ts, asset, "buy", whole_shares(size * ledger.equity(), r["close"]))
                )
    actual = list(results.orders.select("submitted_at", "asset_id", "side", "qty").iter_rows())
    assert sorted(actual) == sorted(expected)
    assert {side for *_, side, _ in expected} == {"buy", "sell"}

    # What the script printed agrees with the same recomputation.
    high = {d.date() for d, level in vix.items() if level > 30}
    for side in ("buy", "sell"):
        mine = [e for e in expected if e[2] == side]
        printed = re.search(rf"{side} orders: (\d+), on VIX > 30 days: (\d+)", run.stdout)
        assert printed, run.stdout
        assert int(printed[1]) == len(mine)
        assert int(printed[2]) == len([e for e in mine if e[0].date() in high])
