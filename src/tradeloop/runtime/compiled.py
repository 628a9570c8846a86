"""Run a SignalStrategy as one compiled kernel, then rebuild the broker's state from it.

``compile_problem`` says why a run cannot take the compiled path (the engine then falls back
to the event path with a ``CompileFallbackWarning``); ``run_compiled`` runs the kernel and
fills in the broker (orders, fills, positions, cash) exactly as the event path would have,
so results, summaries and checks are shared.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from tradeloop.broker.costs import (
    BpsSlippage,
    FixedCommission,
    NoSlippage,
    PercentCommission,
    PerShareCommission,
)
from tradeloop.broker.records import CompiledOrderLog, CompiledOrders
from tradeloop.broker.simulation import SimulationBroker
from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context
from tradeloop.events import OrderStatus, Side
from tradeloop.portfolio import Position
from tradeloop.strategy.declarative import (
    CompileFallbackWarning,
    FixedSizer,
    PercentSizer,
    Rule,
    RuleKind,
    SignalStrategy,
)

__all__ = ["CompileFallbackWarning", "compile_problem", "run_compiled"]

_SIGNAL_KINDS = (RuleKind.SIGNAL_ABOVE, RuleKind.SIGNAL_BELOW)
_CONTEXT_KINDS = (RuleKind.CONTEXT_ABOVE, RuleKind.CONTEXT_BELOW)
_BUY, _SELL = Side.BUY, Side.SELL
_NO_CODES = np.zeros(0, dtype=np.int64)  # the kernel's codes of a complete table: row − start
# the kernel's status codes (strategy/kernel.py), spelt out here so that importing this module
# does not import numba: only a compiled run pays for that
_STATUS = {
    0: OrderStatus.ACCEPTED,
    1: OrderStatus.FILLED,
    2: OrderStatus.REJECTED,
    3: OrderStatus.CANCELLED,
}


def compile_problem(
    strategy: SignalStrategy,
    broker: SimulationBroker,
    table: BarTable,
    context: Context,
    extras: list[str],
) -> str:
    """Why this run cannot be compiled ("" if it can)."""
    if extras:
        return " and ".join(extras) + " run on the event path only"
    if broker.fill_timing != "next_open":
        return "fill_timing='close' is not compiled"
    if broker.cash_shortfall != "partial":
        return f"cash_shortfall={broker.cash_shortfall!r} is not compiled"
    if broker.fractional or broker.allow_short:
        return "fractional quantities and shorting are not compiled"
    if broker.fill_listeners or broker.pre_trade_checks:
        return "fill listeners and pre-trade checks are not compiled"
    if not isinstance(broker.slippage_model, NoSlippage | BpsSlippage):
        return f"slippage model {broker.slippage_model!r} is not compiled"
    if not isinstance(
        broker.commission_model, PercentCommission | PerShareCommission | FixedCommission
    ):
        return f"commission model {broker.commission_model!r} is not compiled"
    sizer = strategy.position_sizer
    if isinstance(sizer, FixedSizer) and sizer.qty != math.floor(sizer.qty):
        return "a fractional FixedSizer quantity is not compiled"
    callbacks = (
        "on_start",
        "on_market_event",
        "on_timestamp_batch",
        "on_fill",
        "on_order",
        "on_end",
    )
    overridden = [
        name
        for name in callbacks
        if getattr(type(strategy), name) is not getattr(SignalStrategy, name)
    ]
    if overridden:
        return f"{type(strategy).__name__} overrides {', '.join(overridden)}"
    for rule in (*strategy.entry_rules, *strategy.exit_rules):
        if rule.kind in _SIGNAL_KINDS and rule.name not in table.signals:
            return f"rule {rule.label} names an unknown signal (the event path will say which)"
        if rule.kind in _CONTEXT_KINDS and not _numeric_context(context, rule.name, table):
            return f"rule {rule.label} needs a numeric context series {rule.name!r}"
    return ""


def _numeric_context(context: Context, name: str, table: BarTable) -> bool:
    try:
        context.aligned(name, table.unique_ts_ns[:1])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _encode(
    rules: list[Rule], signals: list[str], contexts: list[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    kinds = np.array([int(r.kind) for r in rules], dtype=np.int64)
    index = np.array(
        [
            signals.index(r.name)
            if r.kind in _SIGNAL_KINDS
            else contexts.index(r.name)
            if r.kind in _CONTEXT_KINDS
            else 0
            for r in rules
        ],
        dtype=np.int64,
    )
    thresholds = np.array([r.threshold if not math.isnan(r.threshold) else 0.0 for r in rules])
    return kinds, index, thresholds


def run_compiled(
    strategy: SignalStrategy, broker: SimulationBroker, table: BarTable, context: Context
) -> float:
    """Replay ``table`` through the kernel and leave ``broker`` as the event path would;
    return the kernel's own seconds (the replay, before Python objects are rebuilt)."""
    rules = [*strategy.entry_rules, *strategy.exit_rules]
    signal_names = sorted({r.name for r in rules if r.kind in _SIGNAL_KINDS})
    context_names = sorted({r.name for r in rules if r.kind in _CONTEXT_KINDS})
    if len(signal_names) == 1:  # a view of the column: no copy of it for every run
        signals = table.signals[signal_names[0]][None, :]
    elif signal_names:
        signals = np.vstack([table.signals[n] for n in signal_names])
    else:
        signals = np.zeros((1, table.n_rows))
    aligned = (
        np.vstack([context.aligned(n, table.unique_ts_ns) for n in context_names])
        if context_names
        else np.zeros((1, table.n_timestamps))
    )
    entry = _encode(strategy.entry_rules, signal_names, context_names)
    exit_ = _encode(strategy.exit_rules, signal_names, context_names)
    sizer = strategy.position_sizer
    commission = broker.commission_model
    if isinstance(commission, PercentCommission):
        c_kind, c_a, c_b = 0, commission.rate, 0.0
    elif isinstance(commission, PerShareCommission):
        c_kind, c_a, c_b = 1, commission.per_share, commission.minimum
    else:
        assert isinstance(commission, FixedCommission)
        c_kind, c_a, c_b = 2, commission.amount, 0.0
    slippage = broker.slippage_model
    bps = slippage.bps if isinstance(slippage, BpsSlippage) else 0.0
    from tradeloop.strategy.kernel import run_signal_kernel  # imports numba: only when compiling

    started = time.perf_counter()
    out = KernelOutput(
        *run_signal_kernel(
            table.ragged.asset_code if table.ragged is not None else _NO_CODES,
            table.open,
            table.close,
            table.ts_bounds,
            len(table.asset_ids),
            np.ascontiguousarray(signals),
            np.ascontiguousarray(aligned),
            *entry,
            *exit_,
            sizer.percent if isinstance(sizer, PercentSizer) else 0.0,
            sizer.qty if isinstance(sizer, FixedSizer) else 0.0,
            broker.initial_cash,
            c_kind,
            c_a,
            c_b,
            bps,
        )
    )
    kernel_seconds = time.perf_counter() - started
    _rebuild(broker, table, strategy, out)
    portfolio = broker.portfolio
    portfolio.cash, portfolio.commission_paid, portfolio.realized_pnl = (
        float(v) for v in out.totals
    )
    ids = table.asset_ids
    for code in out.held.tolist():
        portfolio.positions[ids[code]] = Position(
            ids[code], float(out.qty[code]), float(out.avg[code]), float(out.realized[code])
        )
    broker.marks.update(
        {ids[c]: float(m) for c, m in enumerate(out.mark.tolist()) if not math.isnan(m)}
    )
    return kernel_seconds


class KernelOutput(NamedTuple):
    """The kernel's arrays by name: orders (o_), fills (f_), and the final book."""

    o_row: npt.NDArray[np.int64]
    o_code: npt.NDArray[np.int64]
    o_side: npt.NDArray[np.int64]
    o_qty: npt.NDArray[np.float64]
    o_status: npt.NDArray[np.int64]
    o_reason: npt.NDArray[np.int64]
    o_filled: npt.NDArray[np.float64]
    o_price: npt.NDArray[np.float64]
    o_info: npt.NDArray[np.float64]
    f_order: npt.NDArray[np.int64]
    f_row: npt.NDArray[np.int64]
    f_qty: npt.NDArray[np.float64]
    f_price: npt.NDArray[np.float64]
    f_commission: npt.NDArray[np.float64]
    f_base: npt.NDArray[np.float64]
    totals: npt.NDArray[np.float64]  # cash, commission paid, realised P&L
    qty: npt.NDArray[np.float64]
    avg: npt.NDArray[np.float64]
    realized: npt.NDArray[np.float64]
    mark: npt.NDArray[np.float64]
    held: npt.NDArray[np.int64]


def _rebuild(
    broker: SimulationBroker, table: BarTable, strategy: SignalStrategy, out: KernelOutput
) -> None:
    """Write the kernel's orders and fills into the broker's logs as columns: no ``Order``
    or ``Fill`` object is made unless someone reads one."""
    ids = np.asarray(table.asset_ids, dtype=object)
    labels = ("strategy", *(rule.label for rule in strategy.exit_rules))
    filled, prices, info = out.o_filled, out.o_price, out.o_info

    def message(n: int) -> str:
        status = _STATUS[int(out.o_status[n])]
        if status is OrderStatus.REJECTED:
            need, est, available = info[n].tolist()
            return (
                f"insufficient cash: needs {need:,.2f} at ~{est:,.4f}, "
                f"{available:,.2f} available after open orders"
            )
        if status is OrderStatus.CANCELLED:
            if filled[n]:
                return f"cash {info[n][2]:,.2f} covered only {filled[n]:g} at {prices[n]:,.4f}"
            return "nothing could fill"
        return ""

    reason_codes = out.o_reason + 1  # -1 (an entry) is "strategy"
    broker.book.orders = CompiledOrderLog(
        CompiledOrders(
            first_id=1,
            asset_code=out.o_code,
            asset_names=table.asset_ids,
            buy=out.o_side > 0,
            qty=out.o_qty,
            submitted_ts_ns=table.ts_ns_of(out.o_row),
            reason_code=reason_codes,
            reason_labels=labels,
            status_code=out.o_status,
            statuses=tuple(_STATUS[code] for code in range(len(_STATUS))),
            filled_qty=filled,
            avg_fill_price=prices,
            message=message,
        )
    )
    rows, order_index = out.f_row, out.f_order
    broker.fills.extend_columns(
        order_id=(order_index + 1).tolist(),
        asset_id=ids[out.o_code[order_index]].tolist(),
        side=np.asarray([_SELL, _BUY], dtype=object)[(out.o_side[order_index] > 0) * 1].tolist(),
        qty=out.f_qty.tolist(),
        price=out.f_price.tolist(),
        commission=out.f_commission.tolist(),
        slippage=(np.abs(out.f_price - out.f_base) * out.f_qty).tolist(),
        ts_ns=table.ts_ns_of(rows).tolist(),
        bar_index=table.bar_index_of(rows).tolist(),
        reason=np.asarray(labels, dtype=object)[reason_codes[order_index]].tolist(),
    )
