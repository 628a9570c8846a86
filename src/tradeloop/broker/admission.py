"""Admission of a new order, after the gate: a known asset, the risk guards, then the cash,
margin and shorting check. Pure: rules over an ``OrderBook``'s cash, positions, marks and
open orders.

- an asset the run has never had a bar of (and does not hold) is refused: nothing would
  ever fill the order, and a limit order would hold its cash back for good;
- the guards (``RiskManager``'s ``pre_trade_checks``) may cut the quantity (noted in the
  order's message) or refuse it;
- a buy must fit the cash left after every open order (pending sells that reduce a long count
  as proceeds; with short margin, only the cash not tied to shorts), estimated at the
  reference price (limit, stop, or the latest close) with the cost models' slippage and
  commission; a buy that only covers a short is never blocked; an order sized at the fill is
  admitted within the cash there is;
- selling more than is held (and not already being sold) is refused unless ``allow_short``;
  with margin, the part that opens a short needs ``initial`` × its value in free cash;
- a reduce-only order (a bracket's exit) skips the check: it never shorts and needs no cash;
  the legs of one OCO count once (only one of them fills).

Each admitted order holds its estimate back (``OrderBook.set_reserve``) until it ends.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tradeloop.broker.orders import Order
from tradeloop.events import OrderType, Side

if TYPE_CHECKING:
    from tradeloop.broker.book import OrderBook
    from tradeloop.portfolio import Position

__all__ = [
    "admission_problem",
    "cash_problem",
    "pre_trade_problem",
    "reference_price",
    "unknown_asset_problem",
]

EPS = 1e-9
_SELL = Side.SELL
_MARKET, _LIMIT, _STOP, _STOP_LIMIT, _TRAIL = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
)


def admission_problem(book: OrderBook, order: Order) -> str:
    """Steps 2–4 of the admission (after the gate), in one pass that looks the asset's mark
    and position up once: a known asset, the guards, the instrument rules, then the cash,
    margin and shorting check. "" admits (``order`` may have been cut or conformed)."""
    asset_id = order.asset_id
    mark = book.marks.get(asset_id)
    position = book.portfolio.positions.get(asset_id)
    if mark is None and (position is None or not position.qty):
        return unknown_asset_problem(order)
    problem = (pre_trade_problem(book, order) if book.pre_trade_checks else "") or (
        book.conform_order(order) if book.instruments else ""
    )
    return problem or cash_problem(book, order, mark, position)


def unknown_asset_problem(order: Order) -> str:
    """An order for an asset the run has never had a bar of (nor holds): no bar will fill
    it, so admitting it would hold its cash back forever."""
    return (
        f"unknown asset {order.asset_id!r}: no bar of it has been seen, so nothing can fill "
        "it. Fix: trade an asset of the data (asset ids are case-sensitive), after its first bar"
    )


def pre_trade_problem(book: OrderBook, order: Order) -> str:
    """Run the risk guards; they may cut the quantity (noted) or refuse the order."""
    if not book.pre_trade_checks:
        return ""
    ref = reference_price(book, order)
    if ref is None:
        return ""
    notes = []
    for check in book.pre_trade_checks:
        allowed, message = check(book, order.asset_id, order.side, order.qty, ref)
        if message:
            notes.append(message)
        if allowed <= 0:
            return "; ".join(notes) or "refused by a pre-trade check"
        order.qty = min(order.qty, allowed)
    order.message = "; ".join(notes)
    return ""


def cash_problem(
    book: OrderBook, order: Order, mark: float | None, position: Position | None
) -> str:
    """The cash, margin and shorting check (step 4 of the admission), given the asset's
    ``mark`` and ``position`` (None: none); "" admits."""
    asset_id = order.asset_id
    held = 0.0 if position is None else position.qty
    open_here = book.open_by_asset.get(asset_id)
    pending_sells = pending_buys = 0.0
    if open_here:
        group = order.group
        for other in open_here:
            if group is not None and other.group is group:
                continue  # one of an OCO's legs fills, not all: count the order once
            if other.side is _SELL:
                pending_sells += other.remaining
            else:
                pending_buys += other.remaining
    ref = mark if order.order_type is _MARKET else reference_price(book, order)
    if order.reduce_only:
        return ""  # capped at the position when it fills: never a short, never cash
    if order.side is _SELL:
        sellable = held - pending_sells
        if not book.allow_short and order.qty > sellable + EPS:
            return (
                f"shorting disabled: sell {order.qty:g} but only {max(sellable, 0):g} held "
                "and not already being sold; pass allow_short=True to short"
            )
        # min(qty, max(sellable, 0)): builtin min/max cost ~0.2 µs a call on 3.11
        reducing = 0.0 if sellable <= 0 else (sellable if sellable < order.qty else order.qty)
        need = 0.0
        if book.margin is not None and order.qty > reducing + EPS:
            if ref is None:
                return f"no price known for {order.asset_id!r} yet to margin the short"
            need = book.margin.initial * (order.qty - reducing) * ref
            available = book.spendable() - book.reserved_total
            if need > available + EPS:
                return (
                    f"margin: shorting {order.qty - reducing:g} at ~{ref:,.4f} needs "
                    f"{need:,.2f} ({book.margin.initial:.0%}), {available:,.2f} free"
                )
        if ref is not None and (reducing > 0 or need):
            book.set_reserve(order.id, need - reducing * ref)
        return ""
    if ref is None:
        return (
            f"no price known for {order.asset_id!r} yet to size the cash check; give a "
            "limit price or trade after its first bar"
        )
    short = -(held + pending_buys)  # what a buy covers: min(qty, max(short, 0))
    covering = 0.0 if short <= 0 else (short if short < order.qty else order.qty)
    est_price = book.slippage_model.price(1, ref, order.qty, math.inf)
    need = (order.qty - covering) * est_price + book.commission_model.commission(
        order.qty, est_price
    )
    cash = book.portfolio.cash if book.margin is None else book.spendable()
    available = cash - book.reserved_total
    if order.fill_percent is not None and available > 0:
        need = min(need, available)  # sized at the fill, within the cash there is then
    if need > available + EPS and order.qty > covering + EPS:  # covering is never blocked
        return (
            f"insufficient cash: needs {need:,.2f} at ~{est_price:,.4f}, "
            f"{available:,.2f} available after open orders"
        )
    book.set_reserve(order.id, need)
    return ""


def reference_price(book: OrderBook, order: Order) -> float | None:
    """The price an order is sized and checked at: its limit, its stop, or the mark."""
    if order.order_type is _LIMIT or order.order_type is _STOP_LIMIT:
        return order.limit_price
    if order.order_type is _STOP or order.order_type is _TRAIL:
        return order.stop_price
    return book.marks.get(order.asset_id)
