"""OrderBook: the orders, fills, positions and cash of one run. Pure: no I/O, no matching.

Every broker composes one book: ``SimulationBroker`` matches the book's open orders against
bars, ``LiveBroker`` sends them to a venue and books the venue's fills. What a strategy may
ask (cash, positions, open orders) is answered here, so it is the same everywhere.

Admission, in this order, when an order is placed:

1. the pre-trade gate of a paper or live run (``tradeloop.risk.gate``): yes or no;
2. the risk guards (``RiskManager``'s ``pre_trade_checks``): they may cut the quantity;
3. the venue's instrument rules, where the book has them (``instruments``, see
   ``tradeloop.broker.instruments``): the quantity rounds down to the step, prices to the
   tick (never worse), or the order is refused naming the rule (counted in
   ``instrument_refusals``); a live run gets them from the venue, a paper run from the
   config, so paper refuses what live would;
4. the cash check: a buy must fit the cash left after every open order (pending sells that
   reduce a long count as proceeds), estimated at the reference price (limit, stop, or the
   latest close) with the cost models' slippage and commission; selling more than is held
   (and not already being sold) is refused unless ``allow_short``.

A refusal is a rejected order with the reason, never an exception (an order that cannot be
an order, a negative quantity say, raises ``OrderError``). Every order gets its client order
id when it is placed (``mint_client_id``; a paper or live run derives it deterministically).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from tradeloop.broker.base import OrderGate, PreTradeCheck
from tradeloop.broker.costs import CommissionModel, SlippageModel, as_commission, as_slippage
from tradeloop.broker.instruments import InstrumentRules, Refused, conform
from tradeloop.broker.orders import Order
from tradeloop.clock import utc_datetime
from tradeloop.errors import ConfigError, OrderError
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.portfolio import Portfolio, Position

__all__ = ["BookFront", "OrderBook"]

EPS = 1e-9
# Enum members bound once: attribute access on an Enum class is slow on the hot path.
_BUY, _SELL = Side.BUY, Side.SELL
_GTC = TimeInForce.GTC
_FILLED, _PARTIAL, _CANCELLED, _REJECTED = (
    OrderStatus.FILLED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.REJECTED,
)
_MARKET, _LIMIT, _STOP, _STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)


class OrderBook:
    """Orders and their fills, the portfolio they add up to, and the latest marks."""

    def __init__(
        self,
        initial_cash: float = 100_000.0,
        *,
        commission: CommissionModel | float | None = None,
        slippage: SlippageModel | float | None = None,
        allow_short: bool = False,
        fractional: bool = False,
    ) -> None:
        if not (initial_cash > 0 and math.isfinite(initial_cash)):
            raise ConfigError(f"initial_cash must be a positive number, got {initial_cash}")
        self.commission_model = as_commission(commission)
        self.slippage_model = as_slippage(slippage)
        self.allow_short = allow_short
        self.fractional = fractional
        self.portfolio = Portfolio(initial_cash)
        self.marks: dict[str, float] = {}
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.fill_listeners: list[Callable[[Fill], None]] = []
        # told of every status change: accepted/rejected at submit, then each later one
        self.order_listeners: list[Callable[[Order], None]] = []
        self.pre_trade_checks: list[PreTradeCheck] = []
        self.gate: OrderGate | None = None
        # the venue's rules per asset (empty: none apply), and refusals counted per rule
        self.instruments: dict[str, InstrumentRules] = {}
        self.instrument_refusals: Counter[str] = Counter()
        # ids of the protective exits placed by ``place_exit`` (a halt keeps them working)
        self.protective: set[int] = set()
        # the client order id of each new order (a paper/live run's deterministic ids)
        self.mint_client_id: Callable[[Order], str] | None = None
        self.now_ns = 0
        self.now: datetime | None = None
        self.open_by_asset: dict[str, list[Order]] = {}
        self._reserve: dict[int, float] = {}
        self._reserved_total = 0.0

    # -- what a strategy may ask --------------------------------------------------------------

    @property
    def initial_cash(self) -> float:
        return self.portfolio.initial_cash

    @property
    def cash(self) -> float:
        return self.portfolio.cash

    def equity(self) -> float:
        marks = self.marks
        total = self.portfolio.cash
        for asset_id, position in self.portfolio.positions.items():
            total += position.qty * marks.get(asset_id, position.avg_price)
        return total

    def valuation(self) -> tuple[float, float]:
        """(equity, gross exposure): cash + Σ qty × mark, and Σ |qty × mark|."""
        marks = self.marks
        equity = self.portfolio.cash
        gross = 0.0
        for asset_id, position in self.portfolio.positions.items():
            value = position.qty * marks.get(asset_id, position.avg_price)
            equity += value
            gross += abs(value)
        return equity, gross

    def position(self, asset_id: str) -> float:
        position = self.portfolio.positions.get(asset_id)
        return 0.0 if position is None else position.qty

    def positions(self) -> Mapping[str, Position]:
        return self.portfolio.positions

    def mark(self, asset_id: str) -> float | None:
        return self.marks.get(asset_id)

    def open_orders(self, asset_id: str | None = None) -> list[Order]:
        if asset_id is not None:
            return list(self.open_by_asset.get(asset_id, ()))
        return [order for orders in self.open_by_asset.values() for order in orders]

    def reserved(self) -> dict[int, float]:
        """Cash each open order holds back (negative: proceeds a pending sell will bring)."""
        return dict(self._reserve)

    def buying_power_reserved(self) -> float:
        """The running total of ``reserved()``, exactly as the admission check uses it."""
        return self._reserved_total

    def buying_power(self) -> float:
        """Cash minus what open orders will need (plus what pending reducing sells bring)."""
        return self.portfolio.cash - self._reserved_total

    # -- orders in ----------------------------------------------------------------------------

    def move(self, ts_ns: int, timestamp: datetime | None = None) -> None:
        """The run is now at ``ts_ns``: new orders and fills carry this time."""
        self.now_ns = ts_ns
        self.now = timestamp

    def place(
        self,
        asset_id: str,
        side: Side,
        qty: float,
        *,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        reason: str = "strategy",
    ) -> Order:
        """Admit (open) or reject a new order; a rejection is returned, never raised."""
        # enum calls are slow; only convert what arrived as a plain string
        side = side if type(side) is Side else Side(side)
        order_type = order_type if type(order_type) is OrderType else OrderType(order_type)
        tif = tif if type(tif) is TimeInForce else TimeInForce(tif)
        validate_order(qty, order_type, limit_price, stop_price, self.fractional)
        order = Order(
            id=len(self.orders) + 1,
            asset_id=asset_id,
            side=side,
            qty=float(qty),
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            tif=tif,
            submitted_ts_ns=self.now_ns,
            reason=reason,
        )
        self.orders.append(order)
        problem = (
            (self.gate.review(self, order) if self.gate is not None else "")
            or self._pre_trade(order)
            or (self.conform_order(order) if self.instruments else "")
            or self._admission_problem(order)
        )
        if self.mint_client_id is not None:
            order.client_order_id = self.mint_client_id(order)
        if problem:
            order.status = _REJECTED
            order.message = problem
            self.tell(order)
            return order
        self.open_by_asset.setdefault(asset_id, []).append(order)
        if self.order_listeners:
            self.tell(order)
        return order

    def place_exit(
        self, asset_id: str, qty: float, order_type: OrderType, reason: str, stop: float | None
    ) -> Order:
        """Open an order that closes ``qty`` of a position now (a protective exit): it skips
        admission, since reducing is always allowed."""
        order = Order(
            id=len(self.orders) + 1,
            asset_id=asset_id,
            side=_SELL if qty > 0 else _BUY,
            qty=abs(qty),
            order_type=order_type,
            limit_price=None,
            stop_price=stop if order_type is _STOP else None,
            tif=_GTC,
            submitted_ts_ns=self.now_ns,
            reason=reason,
        )
        if self.mint_client_id is not None:
            order.client_order_id = self.mint_client_id(order)
        self.orders.append(order)
        self.open_by_asset.setdefault(asset_id, []).append(order)
        self.protective.add(order.id)
        return order

    def cancel(self, order_id: int, message: str = "cancelled by strategy") -> bool:
        """Close an open order as cancelled; False if it is not open (filled, rejected...)."""
        order = self.order(order_id)
        if order is None or not order.is_open:
            return False
        self.close(order, _CANCELLED, message)
        return True

    def order(self, order_id: int) -> Order | None:
        return self.orders[order_id - 1] if 0 < order_id <= len(self.orders) else None

    # -- fills and closes ---------------------------------------------------------------------

    def book(
        self,
        order: Order,
        qty: float,
        price: float,
        commission: float,
        slippage: float,
        bar_index: int,
        message: str = "",
        ts_ns: int | None = None,
    ) -> Fill:
        """Account for one fill of ``order`` (now, unless ``ts_ns``) and tell the listeners.

        A ``message`` closes the order as cancelled after this fill (the rest cannot fill)."""
        when = self.now_ns if ts_ns is None else ts_ns
        self.portfolio.apply_fill(order.asset_id, order.side_sign * qty, price, commission, when)
        fill = Fill(
            order_id=order.id,
            asset_id=order.asset_id,
            side=order.side,
            qty=qty,
            price=price,
            commission=commission,
            slippage=slippage,
            timestamp=self.now if ts_ns is None and self.now is not None else utc_datetime(when),
            ts_ns=when,
            bar_index=bar_index,
            reason=order.reason,
        )
        order.avg_fill_price = (order.avg_fill_price * order.filled_qty + price * qty) / (
            order.filled_qty + qty
        )
        order.filled_qty += qty
        self.fills.append(fill)
        if message:
            self.close(order, _CANCELLED, message)
        elif order.remaining <= EPS:
            self.close(order, _FILLED, "")
        else:
            order.status = _PARTIAL
            reserved = self._reserve.get(order.id)
            if reserved is not None:
                self._set_reserve(order.id, reserved * order.remaining / (order.remaining + qty))
            if self.order_listeners:
                self.tell(order)
        for listener in self.fill_listeners:
            listener(fill)
        return fill

    def tell(self, order: Order) -> None:
        for listener in self.order_listeners:
            listener(order)

    def close(self, order: Order, status: OrderStatus, message: str) -> None:
        """End ``order`` with ``status`` (filled, cancelled, expired, rejected)."""
        order.status = status
        if message:
            order.message = message
        if self.order_listeners:
            self.tell(order)
        self._drop_reserve(order.id)
        orders = self.open_by_asset.get(order.asset_id)
        if orders is not None and order in orders:
            orders.remove(order)
            if not orders:
                del self.open_by_asset[order.asset_id]

    def restore(
        self,
        orders: list[Order],
        fills: list[Fill],
        reserve: dict[int, float],
        reserved_total: float,
        marks: dict[str, float],
    ) -> None:
        """Rebuild the state a journal recorded: fills are re-applied through the same
        accounting, so cash and positions come back bit for bit."""
        if self.orders or self.fills:
            raise ConfigError("restore() needs a fresh broker")
        self.orders[:] = orders
        for fill in fills:
            self.portfolio.apply_fill(
                fill.asset_id, fill.signed_qty, fill.price, fill.commission, fill.ts_ns
            )
        self.fills[:] = fills
        for order in self.orders:
            if order.is_open:
                self.open_by_asset.setdefault(order.asset_id, []).append(order)
        self._reserve = dict(reserve)
        self._reserved_total = reserved_total
        self.marks.update(marks)

    # -- admission ------------------------------------------------------------------------------

    def conform_order(self, order: Order) -> str:
        """Put ``order`` on its asset's step and tick (noted in its message), or say which
        instrument rule refuses it; "" when the order conforms or no rules are known."""
        rules = self.instruments.get(order.asset_id)
        if rules is None:
            return ""
        result = conform(
            rules,
            order.side,
            order.order_type,
            order.qty,
            order.limit_price,
            order.stop_price,
            order.tif,
            self.reference_price(order),
        )
        if isinstance(result, Refused):
            self.instrument_refusals[result.rule] += 1
            return str(result)
        order.qty = float(result.qty)
        order.limit_price = None if result.limit_price is None else float(result.limit_price)
        order.stop_price = None if result.stop_price is None else float(result.stop_price)
        order.tif = result.tif
        if result.changes:
            note = "conformed to the venue's rules: " + ", ".join(result.changes)
            order.message = f"{order.message}; {note}" if order.message else note
        return ""

    def _pre_trade(self, order: Order) -> str:
        """Run the risk guards; they may cut the quantity (noted) or refuse the order."""
        if not self.pre_trade_checks:
            return ""
        ref = self.reference_price(order)
        if ref is None:
            return ""
        notes = []
        for check in self.pre_trade_checks:
            allowed, message = check(self, order.asset_id, order.side, order.qty, ref)
            if message:
                notes.append(message)
            if allowed <= 0:
                return "; ".join(notes) or "refused by a pre-trade check"
            order.qty = min(order.qty, allowed)
        order.message = "; ".join(notes)
        return ""

    def _admission_problem(self, order: Order) -> str:
        held = self.position(order.asset_id)
        open_here = self.open_by_asset.get(order.asset_id)
        pending_sells = pending_buys = 0.0
        if open_here:
            for other in open_here:
                if other.side is _SELL:
                    pending_sells += other.remaining
                else:
                    pending_buys += other.remaining
        ref = self.reference_price(order)
        if order.side is _SELL:
            sellable = held - pending_sells
            if not self.allow_short and order.qty > sellable + EPS:
                return (
                    f"shorting disabled: sell {order.qty:g} but only {max(sellable, 0):g} held "
                    "and not already being sold; pass allow_short=True to short"
                )
            reducing = min(order.qty, max(sellable, 0.0))
            if ref is not None and reducing > 0:
                self._set_reserve(order.id, -reducing * ref)
            return ""
        if ref is None:
            return (
                f"no price known for {order.asset_id!r} yet to size the cash check; give a "
                "limit price or trade after its first bar"
            )
        covering = min(order.qty, max(-(held + pending_buys), 0.0))
        est_price = self.slippage_model.price(1, ref, order.qty, math.inf)
        need = (order.qty - covering) * est_price + self.commission_model.commission(
            order.qty, est_price
        )
        available = self.portfolio.cash - self._reserved_total
        if need > available + EPS:
            return (
                f"insufficient cash: needs {need:,.2f} at ~{est_price:,.4f}, "
                f"{available:,.2f} available after open orders"
            )
        self._set_reserve(order.id, need)
        return ""

    def reference_price(self, order: Order) -> float | None:
        """The price an order is sized and checked at: its limit, its stop, or the mark."""
        if order.order_type is _LIMIT or order.order_type is _STOP_LIMIT:
            return order.limit_price
        if order.order_type is _STOP:
            return order.stop_price
        return self.marks.get(order.asset_id)

    def _set_reserve(self, order_id: int, amount: float) -> None:
        self._reserved_total += amount - self._reserve.get(order_id, 0.0)
        self._reserve[order_id] = amount

    def _drop_reserve(self, order_id: int) -> None:
        amount = self._reserve.pop(order_id, None)
        if amount is not None:
            # reset exactly when nothing is reserved, so rounding never accumulates
            self._reserved_total = self._reserved_total - amount if self._reserve else 0.0


class BookFront:
    """What every broker answers straight from its ``book``: the strategy's questions and
    the run's records. Shared by ``SimulationBroker`` and ``LiveBroker``."""

    book: OrderBook

    @property
    def fractional(self) -> bool:
        return self.book.fractional

    @property
    def allow_short(self) -> bool:
        return self.book.allow_short

    @property
    def initial_cash(self) -> float:
        return self.book.portfolio.initial_cash

    @property
    def cash(self) -> float:
        return self.book.portfolio.cash

    @property
    def portfolio(self) -> Portfolio:
        return self.book.portfolio

    @property
    def marks(self) -> dict[str, float]:
        return self.book.marks

    @property
    def orders(self) -> list[Order]:
        return self.book.orders

    @property
    def fills(self) -> list[Fill]:
        return self.book.fills

    @property
    def fill_listeners(self) -> list[Callable[[Fill], None]]:
        return self.book.fill_listeners

    @property
    def order_listeners(self) -> list[Callable[[Order], None]]:
        return self.book.order_listeners

    @property
    def pre_trade_checks(self) -> list[PreTradeCheck]:
        return self.book.pre_trade_checks

    @property
    def gate(self) -> OrderGate | None:
        return self.book.gate

    @gate.setter
    def gate(self, gate: OrderGate | None) -> None:
        self.book.gate = gate

    @property
    def commission_model(self) -> CommissionModel:
        return self.book.commission_model

    @property
    def slippage_model(self) -> SlippageModel:
        return self.book.slippage_model

    def equity(self) -> float:
        return self.book.equity()

    def valuation(self) -> tuple[float, float]:
        return self.book.valuation()

    def position(self, asset_id: str) -> float:
        position = self.book.portfolio.positions.get(asset_id)  # the most asked: one call
        return 0.0 if position is None else position.qty

    def positions(self) -> Mapping[str, Position]:
        return self.book.portfolio.positions

    def mark(self, asset_id: str) -> float | None:
        return self.book.marks.get(asset_id)

    def open_orders(self, asset_id: str | None = None) -> list[Order]:
        return self.book.open_orders(asset_id)

    def reserved(self) -> dict[int, float]:
        return self.book.reserved()

    def buying_power_reserved(self) -> float:
        return self.book.buying_power_reserved()

    def buying_power(self) -> float:
        return self.book.buying_power()

    def restore(
        self,
        orders: list[Order],
        fills: list[Fill],
        reserve: dict[int, float],
        reserved_total: float,
        marks: dict[str, float],
    ) -> None:
        """Rebuild the book a journal recorded (see ``OrderBook.restore``)."""
        self.book.restore(orders, fills, reserve, reserved_total, marks)


def validate_order(
    qty: float,
    order_type: OrderType,
    limit_price: float | None,
    stop_price: float | None,
    fractional: bool,
) -> None:
    """Raise ``OrderError`` for what cannot be an order at all (a rejection is for the rest)."""
    if not 0 < qty < math.inf:
        raise OrderError(f"order quantity must be a positive number, got {qty}")
    if not fractional and qty != math.floor(qty):
        raise OrderError(
            f"quantity {qty} is fractional; whole shares are the default. "
            "Round it, or build the broker with fractional=True."
        )
    if order_type is _MARKET and limit_price is None and stop_price is None:
        return
    needs_limit = order_type is _LIMIT or order_type is _STOP_LIMIT
    needs_stop = order_type is _STOP or order_type is _STOP_LIMIT
    for needed, value, name in (
        (needs_limit, limit_price, "limit"),
        (needs_stop, stop_price, "stop"),
    ):
        if needed and not (value is not None and 0 < value < math.inf):
            raise OrderError(f"a {order_type} order needs a positive {name} price, got {value}")
        if not needed and value is not None:
            raise OrderError(f"a {order_type} order takes no {name} price (got {value})")
