"""Run a SignalStrategy as one compiled kernel, then rebuild the broker's state from it.

``compile_problem`` says why a run cannot take the compiled path (the engine then falls back
to the event path with a ``CompileFallbackWarning``); ``run_compiled`` runs the kernel and
fills in the broker (orders, fills, positions, cash) exactly as the event path would have,
so results, summaries and checks are shared.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tradeloop.broker.costs import (
    BpsSlippage,
    FixedCommission,
    NoSlippage,
    PercentCommission,
    PerShareCommission,
)
from tradeloop.broker.orders import Order
from tradeloop.broker.simulation import SimulationBroker
from tradeloop.data.bars import BarTable, datetimes_from_ns
from tradeloop.data.context import Context
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.portfolio import Position
from tradeloop.strategy.declarative import FixedSizer, PercentSizer, Rule, RuleKind, SignalStrategy
from tradeloop.strategy.kernel import ACCEPTED, CANCELLED, FILLED, REJECTED, run_signal_kernel

__all__ = ["CompileFallbackWarning", "compile_problem", "run_compiled"]

_SIGNAL_KINDS = (RuleKind.SIGNAL_ABOVE, RuleKind.SIGNAL_BELOW)
_CONTEXT_KINDS = (RuleKind.CONTEXT_ABOVE, RuleKind.CONTEXT_BELOW)
_STATUS = {
    ACCEPTED: OrderStatus.ACCEPTED,
    FILLED: OrderStatus.FILLED,
    REJECTED: OrderStatus.REJECTED,
    CANCELLED: OrderStatus.CANCELLED,
}


class CompileFallbackWarning(UserWarning):
    """A SignalStrategy ran on the (slower, equivalent) event path instead of compiled."""


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
    callbacks = ("on_start", "on_market_event", "on_timestamp_batch", "on_fill", "on_end")
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
) -> None:
    """Replay ``table`` through the kernel and leave ``broker`` as the event path would."""
    rules = [*strategy.entry_rules, *strategy.exit_rules]
    signal_names = sorted({r.name for r in rules if r.kind in _SIGNAL_KINDS})
    context_names = sorted({r.name for r in rules if r.kind in _CONTEXT_KINDS})
    signals = (
        np.vstack([table.signals[n] for n in signal_names])
        if signal_names
        else np.zeros((1, table.n_rows))
    )
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
    (
        o_row,
        o_code,
        o_side,
        o_qty,
        o_status,
        o_reason,
        o_filled,
        o_price,
        o_info,
        f_order,
        f_row,
        f_qty,
        f_price,
        f_commission,
        f_base,
        totals,
        qty,
        avg,
        realized,
        mark,
        held,
    ) = run_signal_kernel(
        table.asset_code,
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
    _rebuild(
        broker,
        table,
        strategy,
        o_row,
        o_code,
        o_side,
        o_qty,
        o_status,
        o_reason,
        o_filled,
        o_price,
        o_info,
        f_order,
        f_row,
        f_qty,
        f_price,
        f_commission,
        f_base,
    )
    portfolio = broker.portfolio
    portfolio.cash, portfolio.commission_paid, portfolio.realized_pnl = (float(v) for v in totals)
    ids = table.asset_ids
    for code in held.tolist():
        portfolio.positions[ids[code]] = Position(
            ids[code], float(qty[code]), float(avg[code]), float(realized[code])
        )
    broker.marks.update(
        {ids[c]: float(m) for c, m in enumerate(mark.tolist()) if not math.isnan(m)}
    )


def _rebuild(
    broker: SimulationBroker,
    table: BarTable,
    strategy: SignalStrategy,
    o_row: npt.NDArray[np.int64],
    o_code: npt.NDArray[np.int64],
    o_side: npt.NDArray[np.int64],
    o_qty: npt.NDArray[np.float64],
    o_status: npt.NDArray[np.int64],
    o_reason: npt.NDArray[np.int64],
    o_filled: npt.NDArray[np.float64],
    o_price: npt.NDArray[np.float64],
    o_info: npt.NDArray[np.float64],
    f_order: npt.NDArray[np.int64],
    f_row: npt.NDArray[np.int64],
    f_qty: npt.NDArray[np.float64],
    f_price: npt.NDArray[np.float64],
    f_commission: npt.NDArray[np.float64],
    f_base: npt.NDArray[np.float64],
) -> None:
    ids = table.asset_ids
    labels = [rule.label for rule in strategy.exit_rules]
    for n in range(len(o_row)):
        side = Side.BUY if o_side[n] > 0 else Side.SELL
        status = _STATUS[int(o_status[n])]
        order = Order(
            id=n + 1,
            asset_id=ids[int(o_code[n])],
            side=side,
            qty=float(o_qty[n]),
            order_type=OrderType.MARKET,
            limit_price=None,
            stop_price=None,
            tif=TimeInForce.GTC,
            submitted_ts_ns=int(table.ts_ns[o_row[n]]),
            reason="strategy" if o_reason[n] < 0 else labels[int(o_reason[n])],
            status=status,
            filled_qty=float(o_filled[n]),
            avg_fill_price=float(o_price[n]),
        )
        if status is OrderStatus.REJECTED:
            need, est, available = o_info[n].tolist()
            order.message = (
                f"insufficient cash: needs {need:,.2f} at ~{est:,.4f}, "
                f"{available:,.2f} available after open orders"
            )
        elif status is OrderStatus.CANCELLED:
            order.message = (
                f"cash {o_info[n][2]:,.2f} covered only {o_filled[n]:g} at {o_price[n]:,.4f}"
                if o_filled[n]
                else "nothing could fill"
            )
        broker.orders.append(order)
    times = datetimes_from_ns(table.ts_ns[f_row]) if len(f_row) else []
    for n in range(len(f_order)):
        order = broker.orders[int(f_order[n])]
        row = int(f_row[n])
        broker.fills.append(
            Fill(
                order_id=order.id,
                asset_id=order.asset_id,
                side=order.side,
                qty=float(f_qty[n]),
                price=float(f_price[n]),
                commission=float(f_commission[n]),
                slippage=abs(float(f_price[n]) - float(f_base[n])) * float(f_qty[n]),
                timestamp=times[n],
                ts_ns=int(table.ts_ns[row]),
                bar_index=int(table.bar_index[row]),
                reason=order.reason,
            )
        )
