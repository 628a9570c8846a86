"""FillLog and OrderLog: what goes in reads back as Fill/Order objects, built when read."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.integers(1, 9)),
        st.tuples(st.just("columns"), st.integers(0, 3)),
        st.tuples(st.just("read"), st.integers(-12, 12)),
        st.tuples(st.just("arrays"), st.just(0)),
    ),
    max_size=30,
)


@given(steps=_STEPS)
def test_fill_log_rows_and_columns_read_as_one_list_whatever_the_order(
    steps: list[tuple[str, int]],
) -> None:
    # ``record`` keeps rows until a column is read; the reference is a plain list of Fills
    log, fills = FillLog(), []
    for step, n in steps:
        if step == "record":
            fill = make_fill(n, f"A{n % 3}", float(n) if n % 2 else -float(n), 10.0 + n, 0.1 * n)
            index = log.record(
                fill.order_id, fill.asset_id, fill.side, fill.qty, fill.price, fill.commission,
                fill.slippage, fill.ts_ns, fill.bar_index, fill.reason,
            )  # fmt: skip
            assert index == len(fills)
            fills.append(fill)
        elif step == "columns":  # a compiled run's whole columns, after what is recorded
            more = [make_fill(100 + i, "B", 2.0, 20.0 + i, 0.0) for i in range(n)]
            log.extend_columns(
                **{
                    name: [getattr(f, name) for f in more]
                    for name in ("order_id", "asset_id", "side", "qty", "price", "commission",
                                 "slippage", "ts_ns", "bar_index", "reason")
                }
            )  # fmt: skip
            fills.extend(more)
        elif step == "read" and -len(fills) <= n < len(fills):
            assert log[n] == fills[n]
        elif step == "arrays":
            assert log.arrays().qty.tolist() == [f.qty for f in fills]
        assert len(log) == len(fills)
    assert list(log) == fills
    assert log.asset_id == [f.asset_id for f in fills]
    assert log.ts_ns == [f.ts_ns for f in fills]
    assert log.arrays().signed_qty.tolist() == [
        f.qty if f.side is Side.BUY else -f.qty for f in fills
    ]
