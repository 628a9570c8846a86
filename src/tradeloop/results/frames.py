"""A run's fills, orders and final positions as polars frames (the result's tables), built
from the broker's logs' columns (``broker.records``), never one row object at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.broker.base import RuntimeBroker
from tradeloop.broker.orders import Order
from tradeloop.broker.records import CompiledOrders, FillLog, OrderLog
from tradeloop.events import Fill

__all__ = ["FILL_SCHEMA", "ORDER_SCHEMA", "fills_frame", "orders_frame", "positions_frame"]

FILL_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
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
}
ORDER_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "order_id": pl.Int64,
    "submitted_at": pl.Datetime("us", "UTC"),
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
}


def _utc_us(ts_ns: Sequence[int] | npt.NDArray[np.int64]) -> pl.Series:
    return pl.Series(ts_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))


def fills_frame(fills: Sequence[Fill]) -> pl.DataFrame:
    log = FillLog.of(fills)
    frame = pl.DataFrame(
        {
            "timestamp": _utc_us(log.ts_ns),
            "order_id": pl.Series(log.order_id, dtype=pl.Int64),
            "asset_id": pl.Series(log.asset_id, dtype=pl.String),
            "side": pl.Series(log.side, dtype=pl.String),  # a StrEnum member is its value
            "qty": pl.Series(log.qty, dtype=pl.Float64),
            "price": pl.Series(log.price, dtype=pl.Float64),
            "commission": pl.Series(log.commission, dtype=pl.Float64),
            "slippage": pl.Series(log.slippage, dtype=pl.Float64),
            "bar_index": pl.Series(log.bar_index, dtype=pl.Int64),
            "reason": pl.Series(log.reason, dtype=pl.String),
        }
    )
    return frame.cast(FILL_SCHEMA)  # type: ignore[arg-type]


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
    compiled = orders.compiled if isinstance(orders, OrderLog) else None
    if compiled is not None:
        return _compiled_orders(compiled)
    return _object_orders(list(orders))


def _object_orders(orders: list[Order]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "order_id": pl.Series([o.id for o in orders], dtype=pl.Int64),
            "submitted_at": _utc_us([o.submitted_ts_ns for o in orders]),
            "asset_id": pl.Series([o.asset_id for o in orders], dtype=pl.String),
            "side": pl.Series([o.side for o in orders], dtype=pl.String),
            "order_type": pl.Series([o.order_type for o in orders], dtype=pl.String),
            "qty": pl.Series([o.qty for o in orders], dtype=pl.Float64),
            "limit_price": pl.Series([o.limit_price for o in orders], dtype=pl.Float64),
            "stop_price": pl.Series([o.stop_price for o in orders], dtype=pl.Float64),
            "tif": pl.Series([o.tif for o in orders], dtype=pl.String),
            "status": pl.Series([o.status for o in orders], dtype=pl.String),
            "filled_qty": pl.Series([o.filled_qty for o in orders], dtype=pl.Float64),
            "avg_fill_price": pl.Series(
                [o.avg_fill_price if o.filled_qty else None for o in orders], dtype=pl.Float64
            ),
            "reason": pl.Series([o.reason for o in orders], dtype=pl.String),
            "message": pl.Series([o.message for o in orders], dtype=pl.String),
        }
    )
    return frame.cast(ORDER_SCHEMA)  # type: ignore[arg-type]


def _compiled_orders(orders: CompiledOrders) -> pl.DataFrame:
    n = len(orders)
    statuses = orders.column(orders.status_code, orders.statuses)
    with_message = {"rejected", "cancelled"}
    messages = [
        orders.message(i) if status in with_message else "" for i, status in enumerate(statuses)
    ]
    frame = pl.DataFrame(
        {
            "order_id": pl.Series(np.arange(orders.first_id, orders.first_id + n)),
            "submitted_at": _utc_us(orders.submitted_ts_ns),
            "asset_id": pl.Series(orders.column(orders.asset_code, orders.asset_names)),
            "side": pl.Series(np.where(orders.buy, "buy", "sell"), dtype=pl.String),
            "order_type": pl.Series(["market"] * n, dtype=pl.String),
            "qty": orders.qty,
            "limit_price": pl.Series([None] * n, dtype=pl.Float64),
            "stop_price": pl.Series([None] * n, dtype=pl.Float64),
            "tif": pl.Series(["gtc"] * n, dtype=pl.String),
            "status": pl.Series(statuses, dtype=pl.String),
            "filled_qty": orders.filled_qty,
            "avg_fill_price": pl.Series(
                np.where(orders.filled_qty != 0, orders.avg_fill_price, np.nan)
            ).fill_nan(None),
            "reason": pl.Series(orders.column(orders.reason_code, orders.reason_labels)),
            "message": pl.Series(messages, dtype=pl.String),
        }
    )
    return frame.cast(ORDER_SCHEMA)  # type: ignore[arg-type]
