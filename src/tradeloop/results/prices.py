"""The closes of every asset a run traded: what its trades are drawn on (``result.prices``).

Only traded assets are kept, so a 500-asset universe that traded 20 costs 20 assets' closes.
Pure: the run's bar table and fills in, a ``timestamp, asset_id, close`` frame out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from tradeloop.broker.records import FillLog
from tradeloop.data.bars import BarTable
from tradeloop.events import Fill

__all__ = ["PRICE_SCHEMA", "traded_prices"]

PRICE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "timestamp": pl.Datetime("us", "UTC"),
    "asset_id": pl.String,
    "close": pl.Float64,
}


def traded_prices(table: BarTable, fills: Sequence[Fill]) -> pl.DataFrame:
    """Every bar's close of the assets in ``fills``, by asset then time."""
    traded = set(FillLog.of(fills).asset_id)
    codes = [code for code, asset in enumerate(table.asset_ids) if asset in traded]
    if not codes:
        return pl.DataFrame(schema=PRICE_SCHEMA)
    # ``asset_rows`` is already by asset (codes follow the sorted names), then time
    keep = np.zeros(len(table.asset_ids), dtype=np.bool_)
    keep[codes] = True
    by_asset = table.asset_rows
    rows = by_asset[keep[table.asset_code_of(by_asset)]]
    names = np.asarray(table.asset_ids, dtype=object)[table.asset_code_of(rows)]
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(table.ts_ns_of(rows)).cast(pl.Datetime("ns", "UTC")),
            "asset_id": pl.Series(names, dtype=pl.String),
            "close": table.close[rows],
        }
    )
    return frame.cast(PRICE_SCHEMA)  # type: ignore[arg-type]
