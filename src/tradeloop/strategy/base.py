"""The Strategy base class: callbacks a user overrides, helpers a user calls.

Helpers talk to whatever broker the run attached (simulated, paper or live), so the same
class runs everywhere. Outside a run there is no broker and every helper raises
``StrategyNotRunningError`` (a ``ValueError``).

The sizing helpers (``buy_percent``, ``set_position_percent``...) and their rules are in
``strategy.sizing``; order options (brackets, trailing stops, GTD) in ``strategy.requests``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradeloop.broker.base import Broker
from tradeloop.broker.orders import Order, OrderRequest
from tradeloop.errors import StrategyNotRunningError
from tradeloop.events import Fill, MarketEvent, OrderType, Side, TimeInForce, TimestampBatch
from tradeloop.strategy.requests import BracketLegs, bracket_legs, order_request
from tradeloop.strategy.sizing import SizingHelpers

if TYPE_CHECKING:
    from tradeloop.broker.base import RuntimeBroker
    from tradeloop.broker.groups import OrderGroup
    from tradeloop.broker.margin import MarginCall

__all__ = ["Strategy", "attach"]

# Enum members bound once: attribute access on an Enum class is slow on Python 3.11.
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT, _STOP, _STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)

_NO_OPTIONS = (None, None, None, None, None)
_NOT_RUNNING = (
    "Broker not initialized. Helper methods only available during backtest "
    "(or a paper/live run): call them from on_start, on_market_event, on_timestamp_batch, "
    "on_fill, on_order or on_end."
)


class Strategy(SizingHelpers):
    """Subclass and override ``on_market_event`` (per bar) or ``on_timestamp_batch``
    (all assets at one timestamp), or both; per-bar calls come first.
    """

    broker: Broker | None = None

    def __init__(self) -> None:
        """Nothing to set up; subclasses may call ``super().__init__()`` or not."""

    # -- callbacks --------------------------------------------------------------------------

    def on_start(self) -> None:
        """Called once before the first bar, with the broker attached."""

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        """Called for every bar, after fills at this bar's open and after risk exits."""

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        """Called once per timestamp with every asset's bar, for cross-sectional logic."""

    def on_fill(self, fill: Fill) -> None:
        """Called after each fill is booked."""

    def on_order(self, order: Order) -> None:
        """Called when an order's status changes: accepted, rejected or held (an OTO child
        waiting for its parent) at submission, then partially filled, filled, cancelled,
        expired, or (live) unknown until looked up."""

    def on_margin_call(self, call: MarginCall) -> None:
        """Called when equity falls below the shorts' maintenance margin (``broker.margin``),
        at the end of the timestamp; orders placed here fill from the next bar."""

    def on_end(self) -> None:
        """Called once after the last bar, with the broker still attached."""

    def get_state(self) -> Any:
        """JSON-able state to persist between daemon restarts (default: none)."""
        return None

    def set_state(self, state: Any) -> None:
        """Restore what ``get_state`` returned, before the first bar after a restart."""

    # -- portfolio state --------------------------------------------------------------------

    def get_position(self, asset_id: str) -> float:
        """Signed quantity held (negative when short); 0 when flat."""
        broker = self.broker  # inlined _broker(): this is the most called helper
        if broker is None:
            raise StrategyNotRunningError(_NOT_RUNNING)
        return broker.position(asset_id)

    def get_cash(self) -> float:
        return self._broker().cash

    def get_portfolio_value(self) -> float:
        """Cash plus every position at its latest close."""
        return self._broker().equity()

    def get_position_value(self, asset_id: str) -> float:
        """Quantity × latest close (negative when short)."""
        broker = self._broker()
        qty = broker.position(asset_id)
        return qty * (broker.mark(asset_id) or 0.0) if qty else 0.0

    def get_positions(self) -> dict[str, float]:
        """Every non-zero position: asset id → signed quantity."""
        return {asset: p.qty for asset, p in self._broker().positions().items()}

    def get_unrealized_pnl(self, asset_id: str) -> float:
        """(latest close − average price) × quantity; 0 when flat."""
        broker = self._broker()
        position = broker.positions().get(asset_id)
        mark = broker.mark(asset_id)
        if position is None or mark is None:
            return 0.0
        return (mark - position.avg_price) * position.qty

    def get_unrealized_pnl_pct(self, asset_id: str) -> float | None:
        """Return on the position's cost (positive when a short has fallen); None when flat."""
        broker = self._broker()
        position = broker.positions().get(asset_id)
        mark = broker.mark(asset_id)
        if position is None or mark is None:
            return None
        direction = 1.0 if position.qty > 0 else -1.0
        return direction * (mark / position.avg_price - 1.0)

    def get_open_orders(self, asset_id: str | None = None) -> list[Order]:
        return self._broker().open_orders(asset_id)

    # -- explicit orders --------------------------------------------------------------------

    def buy(
        self,
        asset_id: str,
        qty: float,
        *,
        limit: float | None = None,
        stop: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        reason: str = "strategy",
        stop_loss: float | None = None,
        take_profit: float | None = None,
        stop_loss_pct: float | None = None,
        take_profit_pct: float | None = None,
        trail_percent: float | None = None,
        trail_amount: float | None = None,
        expire_at: datetime | None = None,
    ) -> Order:
        """Buy ``qty``: a market order, or limit/stop/stop-limit when those prices are given,
        a trailing stop with ``trail_percent``/``trail_amount``, good-till-date with
        ``expire_at``. ``stop_loss``/``take_profit`` (prices) or ``stop_loss_pct``/
        ``take_profit_pct`` (fractions of the fill price) make it a bracket: the exits wait
        for the fill, then one cancels the other (the entry is returned; ``order.group``
        holds the exits)."""
        options = (stop_loss, take_profit, stop_loss_pct, take_profit_pct, trail_percent)
        if trail_amount is None and expire_at is None and options == _NO_OPTIONS:
            return self._submit(asset_id, _BUY, qty, limit, stop, tif, reason)
        request = order_request(
            asset_id, _BUY, qty, limit=limit, stop=stop, tif=tif, reason=reason,
            trail_percent=trail_percent, trail_amount=trail_amount, expire_at=expire_at,
        )  # fmt: skip
        return self._place(request, BracketLegs(*options[:4]))

    def sell(
        self,
        asset_id: str,
        qty: float,
        *,
        limit: float | None = None,
        stop: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        reason: str = "strategy",
        stop_loss: float | None = None,
        take_profit: float | None = None,
        stop_loss_pct: float | None = None,
        take_profit_pct: float | None = None,
        trail_percent: float | None = None,
        trail_amount: float | None = None,
        expire_at: datetime | None = None,
    ) -> Order:
        """Sell ``qty`` (a short only if the broker allows shorting); options as ``buy``
        (a short's bracket has its stop above the fill and its target below)."""
        options = (stop_loss, take_profit, stop_loss_pct, take_profit_pct, trail_percent)
        if trail_amount is None and expire_at is None and options == _NO_OPTIONS:
            return self._submit(asset_id, _SELL, qty, limit, stop, tif, reason)
        request = order_request(
            asset_id, _SELL, qty, limit=limit, stop=stop, tif=tif, reason=reason,
            trail_percent=trail_percent, trail_amount=trail_amount, expire_at=expire_at,
        )  # fmt: skip
        return self._place(request, BracketLegs(*options[:4]))

    def oco(self, *legs: OrderRequest) -> OrderGroup:
        """Place orders of which only one fills: when one fills the others are cancelled
        (a partial fill resizes them). Build the legs with ``OrderRequest``/
        ``tradeloop.order_request``; they share one quantity."""
        return self._broker().submit_group(None, list(legs), oco=True)

    def oto(self, parent: OrderRequest, *children: OrderRequest, oco: bool = False) -> OrderGroup:
        """Place ``parent``; ``children`` wait (held) until it fills, then work with the
        quantity it filled. ``oco=True`` makes the children one-cancels-the-other (a
        bracket)."""
        return self._broker().submit_group(parent, list(children), oco=oco)

    def cancel(self, order: Order | int) -> bool:
        """Cancel an open order (or order id); False if it was no longer open."""
        return self._broker().cancel(order if isinstance(order, int) else order.id)

    # -- internals -------------------------------------------------------------------------------

    def _broker(self) -> Broker:
        broker = self.broker
        if broker is None:
            raise StrategyNotRunningError(_NOT_RUNNING)
        return broker

    def _submit(
        self,
        asset_id: str,
        side: Side,
        qty: float,
        limit: float | None,
        stop: float | None,
        tif: TimeInForce | str,
        reason: str,
    ) -> Order:
        if limit is not None and stop is not None:
            kind = _STOP_LIMIT
        elif limit is not None:
            kind = _LIMIT
        elif stop is not None:
            kind = _STOP
        else:
            kind = _MARKET
        return self._broker().submit(
            asset_id,
            side,
            qty,
            order_type=kind,
            limit_price=limit,
            stop_price=stop,
            tif=tif if type(tif) is TimeInForce else TimeInForce(tif),
            reason=reason,
        )

    def _place(self, request: OrderRequest, levels: BracketLegs) -> Order:
        """An order with options; with exit levels, a bracket (its entry is returned)."""
        broker = self._broker()
        if not levels.any:
            return broker.submit_request(request)
        legs = bracket_legs(request, levels)
        group = broker.submit_group(request, legs, oco=len(legs) > 1)
        assert group.parent is not None
        return group.parent


def attach(strategy: Strategy, broker: RuntimeBroker) -> None:
    """Give ``strategy`` its broker for a run, and have the broker report fills and order
    changes to the callbacks the strategy overrides (backtest, paper and live alike)."""
    if type(strategy).on_fill is not Strategy.on_fill:
        broker.fill_listeners.append(strategy.on_fill)
    if type(strategy).on_order is not Strategy.on_order:
        broker.order_listeners.append(strategy.on_order)
    margin_listeners = getattr(broker, "margin_listeners", None)  # a simulating broker's
    hears_calls = type(strategy).on_margin_call is not Strategy.on_margin_call
    if margin_listeners is not None and hears_calls:
        margin_listeners.append(strategy.on_margin_call)
    strategy.broker = broker
