"""SimulationBroker: fills orders against replayed bars, with no look-ahead. Pure: no I/O.

Timing. An order decided on bar t fills on the asset's next bar, at its open for a market
order (``fill_timing="next_open"``, the default). With ``fill_timing="close"`` a market order
fills at the close of the bar it was decided on (an explicit opt-in; it assumes you could
trade at a price you have just seen). Limit and stop orders always start on the next bar and
fill on its range (see ``orders.match_price``). At one timestamp sells fill before buys, so a
rebalance can spend what it sells.

Money. Quantities are whole shares unless ``fractional=True``. A buy is accepted only if its
estimated cost fits the cash left after every open order (pending sells that reduce a long
count as proceeds); otherwise it is rejected with the reason, and the run goes on. If the
fill price gaps higher than estimated, the buy fills as many shares as cash allows and the
rest is cancelled with a message. Sells that reduce a position are never blocked by cash;
selling more than you hold is rejected unless ``allow_short=True``.

Day orders live for the UTC date of the first bar on which they could fill.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime

from tradeloop.broker.base import Bar, BarSource, OrderGate
from tradeloop.broker.costs import CommissionModel, SlippageModel, as_commission, as_slippage
from tradeloop.broker.orders import Order, match_price
from tradeloop.clock import utc_datetime
from tradeloop.errors import ConfigError, OrderError
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.portfolio import Portfolio, Position

__all__ = ["FILL_TIMINGS", "SimulationBroker"]

FILL_TIMINGS = ("next_open", "close")
_DAY_NS = 86_400 * 1_000_000_000
_EPS = 1e-9
# Enum members bound once: attribute access on an Enum class is slow on the hot path.
_BUY, _SELL = Side.BUY, Side.SELL
_DAY, _GTC = TimeInForce.DAY, TimeInForce.GTC
_FILLED, _PARTIAL, _CANCELLED, _EXPIRED, _REJECTED = (
    OrderStatus.FILLED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.EXPIRED,
    OrderStatus.REJECTED,
)
_MARKET, _LIMIT, _STOP, _STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)


class _NoBars:
    def bar(self, asset_id: str) -> Bar | None:
        return None


class SimulationBroker:
    """Order matching and accounting for replayed bars (also the engine of ``PaperBroker``)."""

    def __init__(
        self,
        initial_cash: float = 100_000.0,
        *,
        commission: CommissionModel | float | None = None,
        slippage: SlippageModel | float | None = None,
        fill_timing: str = "next_open",
        allow_short: bool = False,
        fractional: bool = False,
    ) -> None:
        if fill_timing not in FILL_TIMINGS:
            raise ConfigError(
                f"fill_timing must be one of {FILL_TIMINGS}, got {fill_timing!r}. "
                "'next_open' (default) fills at the next bar's open; 'close' at the decision "
                "bar's close."
            )
        if not (initial_cash > 0 and math.isfinite(initial_cash)):
            raise ConfigError(f"initial_cash must be a positive number, got {initial_cash}")
        self.commission_model = as_commission(commission)
        self.slippage_model = as_slippage(slippage)
        self.fill_timing = fill_timing
        self.allow_short = allow_short
        self.fractional = fractional
        self.portfolio = Portfolio(initial_cash)
        self.marks: dict[str, float] = {}
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.fill_listeners: list[Callable[[Fill], None]] = []
        # told of every status change: accepted/rejected at submit, then each later one
        self.order_listeners: list[Callable[[Order], None]] = []
        # (broker, asset, side, qty, reference price) -> (allowed qty, message): risk guards
        self.pre_trade_checks: list[
            Callable[[SimulationBroker, str, Side, float, float], tuple[float, str]]
        ] = []
        # the pre-trade gate of a paper or live run (``tradeloop.risk.gate``): yes or no
        self.gate: OrderGate | None = None
        self._open: dict[str, list[Order]] = {}
        self._reserve: dict[int, float] = {}
        self._reserved_total = 0.0
        self._now_ns = 0
        self._now: datetime | None = None
        self._bars: BarSource = _NoBars()
        self._close_orders: list[Order] = []

    # -- what a strategy may ask ----------------------------------------------------------

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
            return list(self._open.get(asset_id, ()))
        return [order for orders in self._open.values() for order in orders]

    def reserved(self) -> dict[int, float]:
        """Cash each open order holds back (negative: proceeds a pending sell will bring)."""
        return dict(self._reserve)

    def buying_power_reserved(self) -> float:
        """The running total of ``reserved()``, exactly as the admission check uses it."""
        return self._reserved_total

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
        self.orders = list(orders)
        for fill in fills:
            self.portfolio.apply_fill(
                fill.asset_id, fill.signed_qty, fill.price, fill.commission, fill.ts_ns
            )
        self.fills = list(fills)
        for order in self.orders:
            if order.is_open:
                self._open.setdefault(order.asset_id, []).append(order)
        self._reserve = dict(reserve)
        self._reserved_total = reserved_total
        self.marks.update(marks)

    def buying_power(self) -> float:
        """Cash minus what open orders will need (plus what pending reducing sells bring)."""
        return self.portfolio.cash - self._reserved_total

    def submit(
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
        """Accept or reject an order now; a rejection is returned, never raised."""
        # enum calls are slow; only convert what arrived as a plain string
        side = side if type(side) is Side else Side(side)
        order_type = order_type if type(order_type) is OrderType else OrderType(order_type)
        tif = tif if type(tif) is TimeInForce else TimeInForce(tif)
        _validate(qty, order_type, limit_price, stop_price, self.fractional)
        order = Order(
            id=len(self.orders) + 1,
            asset_id=asset_id,
            side=side,
            qty=float(qty),
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            tif=tif,
            submitted_ts_ns=self._now_ns,
            reason=reason,
        )
        self.orders.append(order)
        problem = (
            (self.gate.review(self, order) if self.gate is not None else "")
            or self._pre_trade(order)
            or self._admission_problem(order)
        )
        if problem:
            order.status = _REJECTED
            order.message = problem
            self._tell(order)
            return order
        self._open.setdefault(asset_id, []).append(order)
        if (
            self.fill_timing == "close"
            and order_type is _MARKET
            and self._bars.bar(asset_id) is not None
        ):
            order.fill_at_close = True
            self._close_orders.append(order)
        if self.order_listeners:
            self._tell(order)
        return order

    def exit_position(
        self, asset_id: str, base_price: float, reason: str, order_type: OrderType, bar: Bar
    ) -> None:
        """Close the whole position now at ``base_price`` (before slippage): a triggered stop,
        target or exit rule. Recorded as an order of ``order_type`` with ``reason``."""
        held = self.position(asset_id)
        if held == 0:
            return
        order = Order(
            id=len(self.orders) + 1,
            asset_id=asset_id,
            side=_SELL if held > 0 else _BUY,
            qty=abs(held),
            order_type=order_type,
            limit_price=None,
            stop_price=base_price if order_type is _STOP else None,
            tif=_GTC,
            submitted_ts_ns=self._now_ns,
            reason=reason,
        )
        self.orders.append(order)
        self._open.setdefault(asset_id, []).append(order)
        self._execute(order, base_price, bar)

    def cancel(self, order_id: int, message: str = "cancelled by strategy") -> bool:
        """Cancel an open order; False if it is not open (filled, rejected, unknown)."""
        if not 0 < order_id <= len(self.orders):
            return False
        order = self.orders[order_id - 1]
        if not order.is_open:
            return False
        self._close(order, _CANCELLED, message)
        return True

    # -- what the replay loop drives --------------------------------------------------------

    def begin_timestamp(
        self, ts_ns: int, bars: BarSource, timestamp: datetime | None = None
    ) -> None:
        """Move to ``ts_ns``: expire day orders, then fill what the new bars' opens allow."""
        self._now_ns = ts_ns
        self._now = timestamp
        self._bars = bars
        if not self._open:
            return
        due = [
            (order, bar)
            for asset_id, orders in self._open.items()
            if (bar := bars.bar(asset_id)) is not None
            for order in orders
        ]
        due.sort(key=lambda item: (item[0].side is _BUY, item[0].id))
        day = ts_ns // _DAY_NS
        for order, bar in due:
            if not order.is_open:
                continue
            if order.tif is _DAY:
                if order.session_day is None:
                    order.session_day = day
                elif day > order.session_day:
                    self._close(order, _EXPIRED, "day order expired unfilled")
                    continue
            price, order.triggered = match_price(order, bar[0], bar[1], bar[2])
            if price is not None:
                self._execute(order, price, bar)

    def end_timestamp(self) -> None:
        """Fill market orders decided at this timestamp at its close (``fill_timing='close'``)."""
        if not self._close_orders:
            return
        orders, self._close_orders = self._close_orders, []
        orders.sort(key=lambda order: (order.side is _BUY, order.id))
        for order in orders:
            bar = self._bars.bar(order.asset_id)
            if order.is_open and bar is not None:
                self._execute(order, bar[3], bar)

    # -- internals -----------------------------------------------------------------------------

    def _pre_trade(self, order: Order) -> str:
        """Run the risk guards; they may cut the quantity (noted) or refuse the order."""
        if not self.pre_trade_checks:
            return ""
        ref = self._reference_price(order)
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
        open_here = self._open.get(order.asset_id)
        pending_sells = pending_buys = 0.0
        if open_here:
            for other in open_here:
                if other.side is _SELL:
                    pending_sells += other.remaining
                else:
                    pending_buys += other.remaining
        ref = self._reference_price(order)
        if order.side is _SELL:
            sellable = held - pending_sells
            if not self.allow_short and order.qty > sellable + _EPS:
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
        if need > available + _EPS:
            return (
                f"insufficient cash: needs {need:,.2f} at ~{est_price:,.4f}, "
                f"{available:,.2f} available after open orders"
            )
        self._set_reserve(order.id, need)
        return ""

    def _set_reserve(self, order_id: int, amount: float) -> None:
        self._reserved_total += amount - self._reserve.get(order_id, 0.0)
        self._reserve[order_id] = amount

    def _drop_reserve(self, order_id: int) -> None:
        amount = self._reserve.pop(order_id, None)
        if amount is not None:
            # reset exactly when nothing is reserved, so rounding never accumulates
            self._reserved_total = self._reserved_total - amount if self._reserve else 0.0

    def _reference_price(self, order: Order) -> float | None:
        if order.order_type in (_LIMIT, _STOP_LIMIT):
            return order.limit_price
        if order.order_type is _STOP:
            return order.stop_price
        return self.marks.get(order.asset_id)

    def _execute(self, order: Order, base_price: float, bar: Bar) -> None:
        sign = order.side_sign
        volume = bar[4]
        qty = min(order.remaining, self.slippage_model.max_qty(volume))
        if not self.fractional:
            qty = math.floor(qty + _EPS)
        if qty <= 0:
            return
        price = self.slippage_model.price(sign, base_price, qty, volume)
        if order.limit_price is not None and order.order_type is not _STOP:
            price = min(price, order.limit_price) if sign > 0 else max(price, order.limit_price)
        held = self.position(order.asset_id)
        short_qty = self._short_limit(order, qty, held)
        if short_qty < qty:
            qty = short_qty
            message = f"position was {held:g} at fill; sold what was held"
        else:
            message = ""
        commission = self.commission_model.commission(qty, price) if qty > 0 else 0.0
        if sign > 0 and qty > 0:
            opening = qty - min(qty, max(-held, 0.0))
            if opening * price + commission > self.portfolio.cash + _EPS:
                qty = self._affordable(qty, price, held)
                commission = self.commission_model.commission(qty, price) if qty > 0 else 0.0
                message = f"cash {self.portfolio.cash:,.2f} covered only {qty:g} at {price:,.4f}"
        if qty <= 0:
            self._close(order, _CANCELLED, message or "nothing could fill")
            return
        self._book(order, qty, price, commission, abs(price - base_price) * qty, bar[5], message)

    def _book(
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
        """Account for one fill of ``order`` (now, unless ``ts_ns``) and tell the listeners."""
        when = self._now_ns if ts_ns is None else ts_ns
        self.portfolio.apply_fill(order.asset_id, order.side_sign * qty, price, commission, when)
        fill = Fill(
            order_id=order.id,
            asset_id=order.asset_id,
            side=order.side,
            qty=qty,
            price=price,
            commission=commission,
            slippage=slippage,
            timestamp=self._now if ts_ns is None and self._now is not None else utc_datetime(when),
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
            self._close(order, _CANCELLED, message)
        elif order.remaining <= _EPS:
            self._close(order, _FILLED, "")
        else:
            order.status = _PARTIAL
            reserved = self._reserve.get(order.id)
            if reserved is not None:
                self._set_reserve(order.id, reserved * order.remaining / (order.remaining + qty))
            if self.order_listeners:
                self._tell(order)
        for listener in self.fill_listeners:
            listener(fill)
        return fill

    def _short_limit(self, order: Order, qty: float, held: float) -> float:
        if order.side is _BUY or self.allow_short:
            return qty
        return max(min(qty, held), 0.0)

    def _affordable(self, qty: float, price: float, held: float) -> float:
        """The largest quantity ≤ ``qty`` whose cost fits in cash (covering a short always fits)."""
        cash = self.portfolio.cash
        cover = min(qty, max(-held, 0.0))

        def fits(q: float) -> bool:
            opening = max(q - cover, 0.0)
            return opening * price + self.commission_model.commission(q, price) <= cash + _EPS or (
                q <= cover
            )

        if fits(qty):
            return qty
        low, high = 0.0, qty
        for _ in range(64):
            mid = (low + high) / 2 if self.fractional else math.floor((low + high) / 2)
            if fits(mid):
                low = mid
            else:
                high = mid
            if not self.fractional and high - low <= 1:
                break
        return low if self.fractional else float(math.floor(low))

    def _tell(self, order: Order) -> None:
        for listener in self.order_listeners:
            listener(order)

    def _close(self, order: Order, status: OrderStatus, message: str) -> None:
        order.status = status
        if message:
            order.message = message
        if self.order_listeners:
            self._tell(order)
        self._drop_reserve(order.id)
        orders = self._open.get(order.asset_id)
        if orders is not None and order in orders:
            orders.remove(order)
            if not orders:
                del self._open[order.asset_id]


def _validate(
    qty: float,
    order_type: OrderType,
    limit_price: float | None,
    stop_price: float | None,
    fractional: bool,
) -> None:
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
