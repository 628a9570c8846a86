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
4. the cash, margin and shorting check (``broker.admission`` states the rules).

A refusal is a rejected order with the reason, never an exception (an order that cannot be
an order, a negative quantity say, raises ``OrderError``). Every order gets its client order
id when it is placed (``mint_client_id``; a paper or live run derives it deterministically).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from tradeloop.broker import groups
from tradeloop.broker.admission import admission_problem, cash_problem, reference_price
from tradeloop.broker.base import OrderGate, PreTradeCheck
from tradeloop.broker.costs import CommissionModel, SlippageModel, as_commission, as_slippage
from tradeloop.broker.instruments import InstrumentRules, Refused, conform
from tradeloop.broker.margin import Charge, Margin, free_cash
from tradeloop.broker.marks import Marks
from tradeloop.broker.orders import Order, OrderRequest, start_trail
from tradeloop.broker.records import FillLog, OrderLog
from tradeloop.broker.validation import validate_order, validate_request
from tradeloop.errors import ConfigError
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.portfolio import Portfolio, Position

__all__ = ["EPS", "MAX_CASH", "OrderBook"]

MAX_CASH = 1e15  # a float keeps cents exactly up to about 1e13; 1e15 is a typo anyway

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
_LIMIT, _STOP, _STOP_LIMIT, _TRAIL = (
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
)
_HELD, _ACCEPTED = OrderStatus.HELD, OrderStatus.ACCEPTED


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
        if initial_cash > MAX_CASH:  # floats lose cents long before this; reports overflow
            raise ConfigError(
                f"initial_cash {initial_cash:g} is more than {MAX_CASH:g}: money sums lose "
                "their cents at that size. Fix: a real amount, e.g. initial_cash=100_000"
            )
        self.commission_model = as_commission(commission)
        self.slippage_model = as_slippage(slippage)
        self.allow_short = allow_short
        self.fractional = fractional
        self.portfolio = Portfolio(initial_cash)
        self.marks = Marks()
        self.orders = OrderLog()
        self.fills = FillLog()  # columns: a Fill is made again when one is read
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
        # how an order linked to a fill is cancelled (an OCO sibling): here at once; a
        # LiveBroker sends the cancel to its venue instead
        self.cancel_linked: Callable[[Order, str], object] = self._cancel_linked
        # told of every order that becomes live later than its submission (an OTO child
        # whose parent filled): a LiveBroker sends it
        self.activation_listeners: list[Callable[[Order], None]] = []
        self.n_groups = 0
        self.margin: Margin | None = None  # shorts' margin (``broker.margin``), if checked
        self.charges: list[Charge] = []  # cash taken outside fills (borrow fees)
        self._reserve: dict[int, float] = {}
        self.reserved_total = 0.0

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
        return self.reserved_total

    def buying_power(self) -> float:
        """Cash minus what open orders will need (plus what pending reducing sells bring)."""
        return self.spendable() - self.reserved_total

    def spendable(self) -> float:
        """The cash a buy may spend: all of it, or with margin the cash not tied to shorts."""
        if self.margin is None:
            return self.portfolio.cash
        return free_cash(self.portfolio.cash, self.margin, self.portfolio.positions, self.marks)

    def charge(self, asset_id: str, amount: float, reason: str) -> None:
        """Take ``amount`` of cash outside a fill (a borrow fee), recorded in ``charges``."""
        self.portfolio.cash -= amount
        self.charges.append(Charge(self.now_ns, asset_id, amount, reason))

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
        validate_order(qty, order_type, limit_price, stop_price, self.fractional, tif)
        # positional: a call with ten keywords costs ~3x as much (Order has 28 fields)
        order = Order(
            len(self.orders) + 1,  # id
            asset_id,
            side,
            float(qty),
            order_type,
            limit_price,
            stop_price,
            tif,
            self.now_ns,  # submitted_ts_ns
            reason,
        )
        self.orders.append(order)
        return self._admit(order)

    def place_request(
        self, request: OrderRequest, group: groups.OrderGroup | None = None, held: bool = False
    ) -> Order:
        """Admit or reject an order with the options a plain ``place`` has not (a trailing
        stop, good-till-date, sizing at the fill, reduce-only, a group). ``held``: an OTO
        child that waits for its parent's fill (see ``activate``)."""
        validate_request(request, self.fractional)
        order = Order.from_request(len(self.orders) + 1, request, self.now_ns, group)
        self.orders.append(order)
        if held:
            order.status = _HELD
            if self.mint_client_id is not None:
                order.client_order_id = self.mint_client_id(order)
            if self.order_listeners:
                self.tell(order)
            return order
        mark = self.marks.get(order.asset_id)
        if order.order_type is _TRAIL and mark is not None:
            start_trail(order, mark)
        elif order.order_type is _TRAIL:
            order.status = _REJECTED
            order.message = (
                f"no price known for {order.asset_id!r} yet to start the trailing stop from; "
                "trade after its first bar"
            )
            self.tell(order)
            return order
        return self._admit(order)

    def activate(self, order: Order, message: str = "") -> None:
        """Make a held order live (its parent filled): reduce-only legs skip admission,
        others pass the cash and shorting check now."""
        order.status = _ACCEPTED
        if order.order_type is _TRAIL and order.group is not None and order.group.parent:
            start_trail(order, order.group.parent.avg_fill_price)
        asset_id = order.asset_id
        problem = (
            ""
            if order.reduce_only
            else cash_problem(
                self, order, self.marks.get(asset_id), self.portfolio.positions.get(asset_id)
            )
        )
        if problem:
            order.status = _REJECTED
            order.message = problem
            self.tell(order)
            return
        order.message = message
        self.open_by_asset.setdefault(order.asset_id, []).append(order)
        self.tell(order)
        for listener in self.activation_listeners:
            listener(order)

    def _admit(self, order: Order) -> Order:
        """Admission (gate, guards, cash), then open or reject ``order``."""
        gate = self.gate
        problem = (gate.review(self, order) if gate is not None else "") or admission_problem(
            self, order
        )
        if self.mint_client_id is not None:
            order.client_order_id = self.mint_client_id(order)
        if problem:
            order.status = _REJECTED
            order.message = problem
            self.tell(order)
            return order
        self.open_by_asset.setdefault(order.asset_id, []).append(order)
        if self.order_listeners:
            self.tell(order)
        return order

    def _cancel_linked(self, order: Order, message: str) -> None:
        self.cancel(order.id, message)

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
        """``book_fill``, returning the ``Fill`` (what a live broker reports on)."""
        return self.fills[
            self.book_fill(order, qty, price, commission, slippage, bar_index, message, ts_ns)
        ]

    def book_fill(
        self,
        order: Order,
        qty: float,
        price: float,
        commission: float,
        slippage: float,
        bar_index: int,
        message: str = "",
        ts_ns: int | None = None,
    ) -> int:
        """Account for one fill of ``order`` (now, unless ``ts_ns``), record it in ``fills``
        (columns: a ``Fill`` is made only for the listeners) and tell the listeners; return
        its index in ``fills``.

        A ``message`` closes the order as cancelled after this fill (the rest cannot fill)."""
        when = self.now_ns if ts_ns is None else ts_ns
        signed = qty if order.side is _BUY else -qty  # (``side_sign``, without the call)
        self.portfolio.apply_fill(order.asset_id, signed, price, commission, when)
        index = self.fills.record(
            order.id,
            order.asset_id,
            order.side,
            qty,
            price,
            commission,
            slippage,
            when,
            bar_index,
            order.reason,
        )
        order.avg_fill_price = (order.avg_fill_price * order.filled_qty + price * qty) / (
            order.filled_qty + qty
        )
        order.filled_qty += qty
        group = order.group
        if message:
            self.close(order, _CANCELLED, message, linked=False)
        elif order.qty - order.filled_qty <= EPS:  # (``remaining``)
            self.close(order, _FILLED, "", linked=False)
        else:
            order.status = _PARTIAL
            reserved = self._reserve.get(order.id)
            if reserved is not None:
                self.set_reserve(order.id, reserved * order.remaining / (order.remaining + qty))
            if self.order_listeners:
                self.tell(order)
        if self.fill_listeners:
            fill = self.fills[index]
            for listener in self.fill_listeners:
                listener(fill)
        if group is not None:
            groups.after_fill(self, group, order)
        return index

    def tell(self, order: Order) -> None:
        for listener in self.order_listeners:
            listener(order)

    def close(
        self, order: Order, status: OrderStatus, message: str, *, linked: bool = True
    ) -> None:
        """End ``order`` with ``status`` (filled, cancelled, expired, rejected); a group's
        parent that ends unfilled takes its held children with it (``linked``)."""
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
        if linked and order.group is not None:
            groups.after_close(self, order.group, order)

    def restore(
        self,
        orders: list[Order],
        fills: list[Fill],
        reserve: dict[int, float],
        reserved_total: float,
        marks: Mapping[str, float],
    ) -> None:
        """Rebuild the state a journal recorded: fills are re-applied through the same
        accounting, so cash and positions come back bit for bit."""
        if self.orders or self.fills:
            raise ConfigError("restore() needs a fresh broker")
        self.orders.extend(orders)
        for fill in fills:
            self.portfolio.apply_fill(
                fill.asset_id, fill.signed_qty, fill.price, fill.commission, fill.ts_ns
            )
        self.fills.extend(fills)
        for order in self.orders:
            if order.is_open:
                self.open_by_asset.setdefault(order.asset_id, []).append(order)
            if order.group is not None:
                self.n_groups = max(self.n_groups, order.group.id)
        self._reserve = dict(reserve)
        self.reserved_total = reserved_total
        self.marks.update(marks)

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
            reference_price(self, order),
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

    def set_reserve(self, order_id: int, amount: float) -> None:
        """Hold back ``amount`` of cash for an open order (negative: proceeds it brings)."""
        self.reserved_total += amount - self._reserve.get(order_id, 0.0)
        self._reserve[order_id] = amount

    def _drop_reserve(self, order_id: int) -> None:
        amount = self._reserve.pop(order_id, None)
        if amount is not None:
            # reset exactly when nothing is reserved, so rounding never accumulates
            self.reserved_total = self.reserved_total - amount if self._reserve else 0.0
