"""FillLog and OrderLog: what goes in reads back as Fill/Order objects, built when read."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tradeloop.results.random_fills import NS_DAY, T0, make_fill
from tradeloop.broker.records import CompiledOrderLog, CompiledOrders, FillLog, OrderLog
from tradeloop.events import OrderStatus, Side


def test_fill_log_reads_back_the_fills_it_was_given() -> None:
    fills = [make_fill(i, "A", q, 10.0 + i, 0.5) for i, q in enumerate([3.0, -1.0, -2.0])]
    log = FillLog(fills)
    assert list(log) == fills
    assert log[-1] == fills[-1]
    assert log[1:] == fills[1:]
    assert log.arrays().signed_qty.tolist() == [3.0, -1.0, -2.0]
    with pytest.raises(IndexError):
        log[3]


def test_order_log_compiled_orders_are_built_only_when_read() -> None:
    asked: list[int] = []

    def message(i: int) -> str:
        asked.append(i)
        return f"m{i}"

    log = CompiledOrderLog(
        CompiledOrders(
            first_id=1,
            asset_code=np.array([0, 1]),
            asset_names=("A", "B"),
            buy=np.array([True, False]),
            qty=np.array([5.0, 2.0]),
            submitted_ts_ns=np.array([T0, T0 + NS_DAY]),
            reason_code=np.array([0, 1]),
            reason_labels=("strategy", "exit"),
            status_code=np.array([1, 0]),
            statuses=(OrderStatus.REJECTED, OrderStatus.FILLED),
            filled_qty=np.array([5.0, 0.0]),
            avg_fill_price=np.array([10.0, 0.0]),
            message=message,
        )
    )
    assert len(log) == 2
    assert asked == []
    second = log[1]
    assert (second.id, second.side, second.status, second.message) == (
        2, Side.SELL, OrderStatus.REJECTED, "m1",
    )  # fmt: skip
    assert log[1] is second  # built once
    assert [o.id for o in log] == [1, 2]
    assert asked == [1, 0]
    assert log[-1] is second
    assert log[:1] == [log[0]]
    with pytest.raises(IndexError):
        log[2]
    assert OrderLog().compiled is None
