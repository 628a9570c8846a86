"""A run's fills, orders and final positions as polars frames (the result's tables)."""

from __future__ import annotations

import polars as pl

from tradeloop.broker.base import RuntimeBroker
from tradeloop.events import Fill

__all__ = ["fills_frame", "orders_frame", "positions_frame"]


def fills_frame(fills: list[Fill]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [f.timestamp for f in fills],
            "order_id": [f.order_id for f in fills],
            "asset_id": [f.asset_id for f in fills],
            "side": [f.side.value for f in fills],
            "qty": [f.qty for f in fills],
            "price": [f.price for f in fills],
            "commission": [f.commission for f in fills],
            "slippage": [f.slippage for f in fills],
            "bar_index": [f.bar_index for f in fills],
            "reason": [f.reason for f in fills],
        },
        schema={
            "timestamp": pl.Datetime("us", "UTC"),
            "order_id": pl.Int64,
            "asset_id": pl.String,
            "side": pl.String,
            "qty": pl.Float64,
            "price": pl.Float64,
            "commission": pl.Float64,
            "slippage": pl.Float64,
            "bar_index": pl.Int64,
            "reason": pl.String,
        },
    )


def positions_frame(broker: RuntimeBroker) -> pl.DataFrame:
    held = sorted(broker.portfolio.positions.values(), key=lambda p: p.asset_id)
    marks = [broker.marks.get(p.asset_id, p.avg_price) for p in held]
    return pl.DataFrame(
        {
            "asset_id": [p.asset_id for p in held],
            "qty": [p.qty for p in held],
            "avg_price": [p.avg_price for p in held],
            "last_price": marks,
            "market_value": [p.qty * m for p, m in zip(held, marks, strict=True)],
            "unrealized_pnl": [(m - p.avg_price) * p.qty for p, m in zip(held, marks, strict=True)],
            "realized_pnl": [p.realized_pnl for p in held],
        },
        schema={
            "asset_id": pl.String,
            "qty": pl.Float64,
            "avg_price": pl.Float64,
            "last_price": pl.Float64,
            "market_value": pl.Float64,
            "unrealized_pnl": pl.Float64,
            "realized_pnl": pl.Float64,
        },
    )


def orders_frame(broker: RuntimeBroker) -> pl.DataFrame:
    orders = broker.orders
    return pl.DataFrame(
        {
            "order_id": [o.id for o in orders],
            "submitted_at": pl.Series([o.submitted_ts_ns for o in orders], dtype=pl.Int64)
            .cast(pl.Datetime("ns", "UTC"))
            .cast(pl.Datetime("us", "UTC")),
            "asset_id": [o.asset_id for o in orders],
            "side": [o.side.value for o in orders],
            "order_type": [o.order_type.value for o in orders],
            "qty": [o.qty for o in orders],
            "limit_price": [o.limit_price for o in orders],
            "stop_price": [o.stop_price for o in orders],
            "tif": [o.tif.value for o in orders],
            "status": [o.status.value for o in orders],
            "filled_qty": [o.filled_qty for o in orders],
            "avg_fill_price": [o.avg_fill_price if o.filled_qty else None for o in orders],
            "reason": [o.reason for o in orders],
            "message": [o.message for o in orders],
        },
        schema_overrides={
            "asset_id": pl.String,
            "side": pl.String,
            "order_type": pl.String,
            "qty": pl.Float64,
            "limit_price": pl.Float64,
            "stop_price": pl.Float64,
            "tif": pl.String,
            "status": pl.String,
            "filled_qty": pl.Float64,
            "avg_fill_price": pl.Float64,
            "reason": pl.String,
            "message": pl.String,
            "order_id": pl.Int64,
        },
    )
