"""The compiled replay of a SignalStrategy: one numba kernel over the columnar bars.

It re-implements, for the subset a SignalStrategy uses (market orders filled at the next
open, whole shares, percent/per-share/fixed commission, bps slippage, long only), exactly the
arithmetic of SimulationBroker, Portfolio and the Strategy helpers, in the same order, so the
fills and the final equity are identical to the event path (tests/.../test_compiled.py runs
both). Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["run_signal_kernel"]

# rule kinds (RuleKind values)
_SIGNAL_ABOVE, _SIGNAL_BELOW, _CONTEXT_ABOVE, _CONTEXT_BELOW, _STOP, _TARGET = 0, 1, 2, 3, 4, 5
# commission kinds
_PERCENT, _PER_SHARE, _FIXED = 0, 1, 2
# order status codes
ACCEPTED, FILLED, REJECTED, CANCELLED = 0, 1, 2, 3
_EPS = 1e-9


@njit(cache=True)
def _commission(kind: int, a: float, b: float, qty: float, price: float) -> float:
    if kind == _PERCENT:
        return qty * price * a
    if kind == _PER_SHARE:
        return max(qty * a, b)
    return a


@njit(cache=True)
def _holds(kind: int, value: float, threshold: float) -> bool:
    if kind == _SIGNAL_ABOVE or kind == _CONTEXT_ABOVE:
        return value > threshold
    if kind == _SIGNAL_BELOW or kind == _CONTEXT_BELOW:
        return value < threshold
    if kind == _STOP:
        return value <= -threshold
    if kind == _TARGET:
        return value >= threshold
    return True


@njit(cache=True)
def _rule_value(
    kind: int,
    index: int,
    row: int,
    k: int,
    signals: np.ndarray,
    context: np.ndarray,
    pnl_pct: float,
) -> float:
    if kind == _SIGNAL_ABOVE or kind == _SIGNAL_BELOW:
        return float(signals[index, row])
    if kind == _CONTEXT_ABOVE or kind == _CONTEXT_BELOW:
        return float(context[index, k])
    if kind == _STOP or kind == _TARGET:
        return pnl_pct
    return 0.0


@njit(cache=True)
def run_signal_kernel(
    codes: np.ndarray,
    opens: np.ndarray,
    closes: np.ndarray,
    ts_bounds: np.ndarray,
    n_assets: int,
    signals: np.ndarray,
    context: np.ndarray,
    entry_kind: np.ndarray,
    entry_index: np.ndarray,
    entry_threshold: np.ndarray,
    exit_kind: np.ndarray,
    exit_index: np.ndarray,
    exit_threshold: np.ndarray,
    size_percent: float,
    size_qty: float,
    initial_cash: float,
    commission_kind: int,
    commission_a: float,
    commission_b: float,
    slippage_bps: float,
) -> tuple[np.ndarray, ...]:
    n_rows = opens.shape[0]
    complete = codes.shape[0] == 0  # every asset at every timestamp: row start + code
    cash = initial_cash
    commission_paid = 0.0
    realized_total = 0.0
    qty = np.zeros(n_assets)
    avg = np.zeros(n_assets)
    realized = np.zeros(n_assets)
    mark = np.full(n_assets, np.nan)
    held = np.empty(n_assets, dtype=np.int64)  # open positions in opening order
    n_held = 0
    pending = np.full(n_assets, -1, dtype=np.int64)  # open order id (index) per asset
    reserved_total = 0.0
    n_reserves = 0

    cap = n_rows + 1
    o_row = np.empty(cap, dtype=np.int64)
    o_code = np.empty(cap, dtype=np.int64)
    o_side = np.empty(cap, dtype=np.int64)
    o_qty = np.empty(cap)
    o_status = np.empty(cap, dtype=np.int64)
    o_reason = np.empty(cap, dtype=np.int64)  # -1 entry, j = exit rule j
    # np.empty throughout: a row's fields are set when its order is created (no zeroing pass)
    o_filled = np.empty(cap)
    o_fill_price = np.empty(cap)
    o_reserve = np.empty(cap)
    o_has_reserve = np.empty(cap, dtype=np.bool_)
    o_info = np.empty((cap, 3))  # need, estimated price, available (rejections); cash (cuts)
    n_orders = 0
    f_order = np.empty(cap, dtype=np.int64)
    f_row = np.empty(cap, dtype=np.int64)
    f_qty = np.empty(cap)
    f_price = np.empty(cap)
    f_commission = np.empty(cap)
    f_base = np.empty(cap)
    n_fills = 0
    due = np.empty(n_assets, dtype=np.int64)
    due_row = np.empty(n_assets, dtype=np.int64)
    keys = np.empty(n_assets, dtype=np.int64)

    n_ts = ts_bounds.shape[0] - 1
    for k in range(n_ts):
        start = ts_bounds[k]
        stop = ts_bounds[k + 1]
        # 1. open orders fill at this open: sells first, then by order id
        n_due = 0
        for i in range(start, stop):
            oid = pending[i - start if complete else codes[i]]
            if oid >= 0:
                due[n_due] = oid
                due_row[n_due] = i
                keys[n_due] = (0 if o_side[oid] < 0 else cap) + oid
                n_due += 1
        if n_due:
            order_of = np.argsort(keys[:n_due])
            for j in order_of:
                oid = due[j]
                i = due_row[j]
                c = o_code[oid]
                sign = o_side[oid]
                want = np.floor(o_qty[oid] - o_filled[oid] + _EPS)
                base = opens[i]
                price = base * (1.0 + sign * slippage_bps / 10_000.0)
                have = qty[c]
                fill = want
                cut = False
                if sign < 0 and fill > have:
                    fill = max(min(fill, have), 0.0)
                    cut = True
                commission = (
                    _commission(commission_kind, commission_a, commission_b, fill, price)
                    if fill > 0
                    else 0.0
                )
                if sign > 0 and fill > 0 and fill * price + commission > cash + _EPS:
                    # the largest whole quantity whose cost fits (SimulationBroker._affordable)
                    low, high = 0.0, fill
                    for _ in range(64):
                        mid = np.floor((low + high) / 2)
                        cost = mid * price + _commission(
                            commission_kind, commission_a, commission_b, mid, price
                        )
                        if cost <= cash + _EPS:
                            low = mid
                        else:
                            high = mid
                        if high - low <= 1:
                            break
                    fill = np.floor(low)
                    commission = (
                        _commission(commission_kind, commission_a, commission_b, fill, price)
                        if fill > 0
                        else 0.0
                    )
                    o_info[oid, 2] = cash
                    cut = True
                pending[c] = -1
                if fill <= 0:
                    o_status[oid] = CANCELLED
                else:
                    # Portfolio.apply_fill
                    signed = sign * fill
                    cash -= signed * price + commission
                    commission_paid += commission
                    old = qty[c]
                    new = old + signed
                    if abs(new) <= _EPS * max(1.0, abs(old)):
                        new = 0.0
                    if old == 0 or (old > 0) == (signed > 0):
                        avg[c] = (old * avg[c] + signed * price) / new
                        if old == 0:
                            held[n_held] = c
                            n_held += 1
                    else:
                        closed = min(abs(signed), abs(old))
                        gain = closed * (price - avg[c]) * (1.0 if old > 0 else -1.0)
                        realized[c] += gain
                        realized_total += gain
                        if new != 0 and (new > 0) != (old > 0):
                            avg[c] = price
                    qty[c] = new
                    if new == 0:
                        for h in range(n_held):
                            if held[h] == c:
                                for m in range(h, n_held - 1):
                                    held[m] = held[m + 1]
                                n_held -= 1
                                break
                    f_order[n_fills] = oid
                    f_row[n_fills] = i
                    f_qty[n_fills] = fill
                    f_price[n_fills] = price
                    f_commission[n_fills] = commission
                    f_base[n_fills] = base
                    n_fills += 1
                    o_fill_price[oid] = (o_fill_price[oid] * o_filled[oid] + price * fill) / (
                        o_filled[oid] + fill
                    )
                    o_filled[oid] += fill
                    o_status[oid] = CANCELLED if cut else FILLED
                if o_has_reserve[oid]:
                    # SimulationBroker._drop_reserve
                    n_reserves -= 1
                    reserved_total = reserved_total - o_reserve[oid] if n_reserves > 0 else 0.0
                    o_has_reserve[oid] = False
        # 2. marks
        for i in range(start, stop):
            mark[i - start if complete else codes[i]] = closes[i]
        # 3. decisions, asset by asset
        for i in range(start, stop):
            c = i - start if complete else codes[i]
            if pending[c] >= 0:
                continue
            position = qty[c]
            side = 0
            order_qty = 0.0
            reason = -1
            if position == 0:
                enter = True
                for r in range(entry_kind.shape[0]):
                    value = _rule_value(entry_kind[r], entry_index[r], i, k, signals, context, 0.0)
                    if not _holds(entry_kind[r], value, entry_threshold[r]):
                        enter = False
                        break
                if enter:
                    if size_percent > 0:
                        equity = cash
                        for h in range(n_held):
                            a = held[h]
                            equity += qty[a] * (mark[a] if not np.isnan(mark[a]) else avg[a])
                        order_qty = np.floor(abs(size_percent * equity) / closes[i] + _EPS)
                    else:
                        order_qty = size_qty
                    side = 1
            elif position > 0:
                pnl_pct = mark[c] / avg[c] - 1.0
                for r in range(exit_kind.shape[0]):
                    value = _rule_value(
                        exit_kind[r], exit_index[r], i, k, signals, context, pnl_pct
                    )
                    if _holds(exit_kind[r], value, exit_threshold[r]):
                        side = -1
                        order_qty = position
                        reason = r
                        break
            if side == 0 or order_qty <= 0:
                continue
            oid = n_orders
            n_orders += 1
            o_row[oid] = i
            o_code[oid] = c
            o_side[oid] = side
            o_qty[oid] = order_qty
            o_reason[oid] = reason
            o_filled[oid] = 0.0
            o_fill_price[oid] = 0.0
            o_has_reserve[oid] = False
            o_info[oid, 0] = 0.0
            o_info[oid, 1] = 0.0
            o_info[oid, 2] = 0.0
            ref = mark[c]
            if side > 0:
                est = ref * (1.0 + slippage_bps / 10_000.0)
                need = order_qty * est + _commission(
                    commission_kind, commission_a, commission_b, order_qty, est
                )
                available = cash - reserved_total
                if need > available + _EPS:
                    o_status[oid] = REJECTED
                    o_info[oid, 0] = need
                    o_info[oid, 1] = est
                    o_info[oid, 2] = available
                    continue
                reserve = need
            else:
                reserve = -order_qty * ref
            o_status[oid] = ACCEPTED
            reserved_total += reserve - 0.0
            n_reserves += 1
            o_reserve[oid] = reserve
            o_has_reserve[oid] = True
            pending[c] = oid

    return (
        o_row[:n_orders],
        o_code[:n_orders],
        o_side[:n_orders],
        o_qty[:n_orders],
        o_status[:n_orders],
        o_reason[:n_orders],
        o_filled[:n_orders],
        o_fill_price[:n_orders],
        o_info[:n_orders],
        f_order[:n_fills],
        f_row[:n_fills],
        f_qty[:n_fills],
        f_price[:n_fills],
        f_commission[:n_fills],
        f_base[:n_fills],
        np.array([cash, commission_paid, realized_total]),
        qty,
        avg,
        realized,
        mark,
        held[:n_held],
    )
