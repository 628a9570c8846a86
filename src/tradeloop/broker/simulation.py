"""SimulationBroker: fills orders against replayed bars, with no look-ahead. Pure: no I/O.

Timing. An order decided on bar t fills on the asset's next bar, at its open for a market
order (``fill_timing="next_open"``, the default). With ``fill_timing="close"`` a market order
fills at the close of the bar it was decided on (an explicit opt-in; it assumes you could
trade at a price you have just seen). Limit and stop orders always start on the next bar and
fill on its range (see ``orders.match_price``). At one timestamp sells fill before buys, so a
rebalance can spend what it sells.

Money. Admission (the gate, the guards, the cash check) is the order book's
(``broker.book``). Quantities are whole shares unless ``fractional=True``. If the fill price
gaps higher than estimated and cash no longer covers a buy, ``cash_shortfall`` decides:
``"partial"`` (the default) fills as many shares as cash allows and cancels the rest with a
message; ``"reject"`` fills nothing and rejects the order (backtrader's behaviour). Sells that
reduce a position are never blocked by cash.

Day orders live for the UTC date of the first bar on which they could fill.
"""

from __future__ import annotations

import math
from datetime import datetime

from tradeloop.broker.base import Bar, BarSource
from tradeloop.broker.book import EPS, BookFront, OrderBook
from tradeloop.broker.costs import CommissionModel, SlippageModel
from tradeloop.broker.orders import Order, match_price
from tradeloop.errors import ConfigError
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce

__all__ = ["CASH_SHORTFALLS", "FILL_TIMINGS", "SimulationBroker"]

FILL_TIMINGS = ("next_open", "close")
CASH_SHORTFALLS = ("partial", "reject")
_DAY_NS = 86_400 * 1_000_000_000
# Enum members bound once: attribute access on an Enum class is slow on the hot path.
_BUY = Side.BUY
_DAY = TimeInForce.DAY
_CANCELLED, _EXPIRED, _REJECTED = (
    OrderStatus.CANCELLED,
    OrderStatus.EXPIRED,
    OrderStatus.REJECTED,
)
_MARKET, _STOP = OrderType.MARKET, OrderType.STOP


class _NoBars:
    def bar(self, asset_id: str) -> Bar | None:
        return None


class SimulationBroker(BookFront):
    """Order matching against bars, over an ``OrderBook`` (also the engine of
    ``PaperBroker``)."""

    def __init__(
        self,
        initial_cash: float = 100_000.0,
        *,
        commission: CommissionModel | float | None = None,
        slippage: SlippageModel | float | None = None,
        fill_timing: str = "next_open",
        allow_short: bool = False,
        fractional: bool = False,
        cash_shortfall: str = "partial",
    ) -> None:
        if cash_shortfall not in CASH_SHORTFALLS:
            raise ConfigError(
                f"cash_shortfall must be one of {CASH_SHORTFALLS}, got {cash_shortfall!r}. "
                "Fix: 'partial' (default) fills what cash allows at the fill and cancels the "
                "rest; 'reject' rejects the whole order."
            )
        if fill_timing not in FILL_TIMINGS:
            raise ConfigError(
                f"fill_timing must be one of {FILL_TIMINGS}, got {fill_timing!r}. "
                "'next_open' (default) fills at the next bar's open; 'close' at the decision "
                "bar's close."
            )
        self.book = OrderBook(
            initial_cash,
            commission=commission,
            slippage=slippage,
            allow_short=allow_short,
            fractional=fractional,
        )
        self.fill_timing = fill_timing
        self.cash_shortfall = cash_shortfall
        self._bars: BarSource = _NoBars()
        self._close_orders: list[Order] = []

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
        order = self.book.place(
            asset_id,
            side,
            qty,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            tif=tif,
            reason=reason,
        )
        if (
            self.fill_timing == "close"
            and order.is_open
            and order.order_type is _MARKET
            and self._bars.bar(asset_id) is not None
        ):
            order.fill_at_close = True
            self._close_orders.append(order)
        return order

    def exit_position(
        self, asset_id: str, base_price: float, reason: str, order_type: OrderType, bar: Bar
    ) -> None:
        """Close the whole position now at ``base_price`` (before slippage): a triggered stop,
        target or exit rule. Recorded as an order of ``order_type`` with ``reason``."""
        held = self.position(asset_id)
        if held == 0:
            return
        order = self.book.place_exit(asset_id, held, order_type, reason, base_price)
        self._execute(order, base_price, bar)

    def cancel(self, order_id: int, message: str = "cancelled by strategy") -> bool:
        """Cancel an open order; False if it is not open (filled, rejected, unknown)."""
        return self.book.cancel(order_id, message)

    # -- what the replay loop drives --------------------------------------------------------

    def begin_timestamp(
        self, ts_ns: int, bars: BarSource, timestamp: datetime | None = None
    ) -> None:
        """Move to ``ts_ns``: expire day orders, then fill what the new bars' opens allow."""
        book = self.book
        book.now_ns = ts_ns
        book.now = timestamp
        self._bars = bars
        if not book.open_by_asset:
            return
        due = [
            (order, bar)
            for asset_id, orders in book.open_by_asset.items()
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
                    book.close(order, _EXPIRED, "day order expired unfilled")
                    continue
            price, order.triggered = match_price(order, bar[0], bar[1], bar[2], bar[3])
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

    def _execute(self, order: Order, base_price: float, bar: Bar) -> None:
        book = self.book
        slippage, commission_model = book.slippage_model, book.commission_model
        sign = order.side_sign
        volume = bar[4]
        qty = min(order.remaining, slippage.max_qty(volume))
        if not book.fractional:
            qty = math.floor(qty + EPS)
        if qty <= 0:
            return
        price = slippage.price(sign, base_price, qty, volume)
        if order.limit_price is not None and order.order_type is not _STOP:
            price = min(price, order.limit_price) if sign > 0 else max(price, order.limit_price)
        held = self.position(order.asset_id)
        short_qty = qty if order.side is _BUY or book.allow_short else max(min(qty, held), 0.0)
        if short_qty < qty:
            qty = short_qty
            message = f"position was {held:g} at fill; sold what was held"
        else:
            message = ""
        commission = commission_model.commission(qty, price) if qty > 0 else 0.0
        cash = book.portfolio.cash
        if sign > 0 and qty > 0:
            opening = qty - min(qty, max(-held, 0.0))
            if opening * price + commission > cash + EPS:
                if self.cash_shortfall == "reject":
                    self._reject_shortfall(order, qty, price, opening * price + commission)
                    return
                qty = self._affordable(qty, price, held)
                commission = commission_model.commission(qty, price) if qty > 0 else 0.0
                message = f"cash {cash:,.2f} covered only {qty:g} at {price:,.4f}"
        if qty <= 0:
            book.close(order, _CANCELLED, message or "nothing could fill")
            return
        book.book(order, qty, price, commission, abs(price - base_price) * qty, bar[5], message)

    def _reject_shortfall(self, order: Order, qty: float, price: float, need: float) -> None:
        """``cash_shortfall="reject"``: a buy that cash does not cover at its fill fills
        nothing; it is rejected (cancelled, if earlier bars filled part of it)."""
        cash = self.book.portfolio.cash
        message = (
            f"cash {cash:,.2f} does not cover {qty:g} at {price:,.4f} ({need:,.2f}); "
            "cash_shortfall='reject'"
        )
        self.book.close(order, _CANCELLED if order.filled_qty else _REJECTED, message)

    def _affordable(self, qty: float, price: float, held: float) -> float:
        """The largest quantity ≤ ``qty`` whose cost fits in cash (covering a short always fits)."""
        cash = self.book.portfolio.cash
        commission = self.book.commission_model.commission
        fractional = self.book.fractional
        cover = min(qty, max(-held, 0.0))

        def fits(q: float) -> bool:
            opening = max(q - cover, 0.0)
            return opening * price + commission(q, price) <= cash + EPS or q <= cover

        if fits(qty):
            return qty
        low, high = 0.0, qty
        for _ in range(64):
            mid = (low + high) / 2 if fractional else math.floor((low + high) / 2)
            if fits(mid):
                low = mid
            else:
                high = mid
            if not fractional and high - low <= 1:
                break
        return low if fractional else float(math.floor(low))
