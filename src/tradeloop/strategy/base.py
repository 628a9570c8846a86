"""The Strategy base class: callbacks a user overrides, helpers a user calls.

Helpers talk to whatever broker the run attached (simulated, paper or live), so the same
class runs everywhere. Outside a run there is no broker and every helper raises
``StrategyNotRunningError`` (a ``ValueError``).

Sizing rules, shared by every helper:
- "percent" means a fraction of portfolio value (cash + positions at their latest close):
  ``buy_percent(a, 0.10)`` buys about 10 % of equity worth of ``a``.
- the sizing price is the asset's latest close (the bar being handled) unless ``price=`` is
  given; whole shares are rounded toward zero unless the broker trades fractions.
- helpers that aim at a target (``set_position_percent``, ``size_by_confidence``,
  ``rebalance_to_weights``) count orders still open, so calling them every bar never
  stacks duplicate orders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradeloop.broker.base import Broker
from tradeloop.broker.orders import Order, net_remaining
from tradeloop.errors import OrderError, StrategyNotRunningError
from tradeloop.events import Fill, MarketEvent, OrderType, Side, TimeInForce, TimestampBatch

if TYPE_CHECKING:
    from tradeloop.broker.base import RuntimeBroker

__all__ = ["Strategy", "attach"]

# Enum members bound once: attribute access on an Enum class is slow on Python 3.11.
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT, _STOP, _STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)

_NOT_RUNNING = (
    "Broker not initialized. Helper methods only available during backtest "
    "(or a paper/live run): call them from on_start, on_market_event, on_timestamp_batch, "
    "on_fill, on_order or on_end."
)


class Strategy:
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
        """Called when an order's status changes: accepted or rejected at submission, then
        partially filled, filled, cancelled, expired, or (live) unknown until looked up."""

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
    ) -> Order:
        """Buy ``qty``: a market order, or limit/stop/stop-limit when those prices are given."""
        return self._submit(asset_id, _BUY, qty, limit, stop, tif, reason)

    def sell(
        self,
        asset_id: str,
        qty: float,
        *,
        limit: float | None = None,
        stop: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        reason: str = "strategy",
    ) -> Order:
        """Sell ``qty`` (a short only if the broker allows shorting)."""
        return self._submit(asset_id, _SELL, qty, limit, stop, tif, reason)

    def cancel(self, order: Order | int) -> bool:
        """Cancel an open order (or order id); False if it was no longer open."""
        return self._broker().cancel(order if isinstance(order, int) else order.id)

    # -- sizing helpers ---------------------------------------------------------------------

    def buy_percent(
        self, asset_id: str, percent: float, price: float | None = None, **order: Any
    ) -> Order | None:
        """Buy ``percent`` of portfolio value worth of ``asset_id``; None if that is < 1 share."""
        qty = self._qty_for_value(asset_id, percent * self.get_portfolio_value(), price)
        return self.buy(asset_id, qty, **order) if qty > 0 else None

    def sell_percent(
        self, asset_id: str, percent: float, price: float | None = None, **order: Any
    ) -> Order | None:
        """Sell ``percent`` of portfolio value worth of ``asset_id``; None if < 1 share."""
        qty = self._qty_for_value(asset_id, percent * self.get_portfolio_value(), price)
        return self.sell(asset_id, qty, **order) if qty > 0 else None

    def close_position(self, asset_id: str, **order: Any) -> Order | None:
        """Cancel the asset's open orders and flatten it with a market order; None if flat."""
        broker = self._broker()
        for open_order in broker.open_orders(asset_id):
            broker.cancel(open_order.id)
        qty = broker.position(asset_id)
        if qty == 0:
            return None
        side = _SELL if qty > 0 else _BUY
        return (
            self.buy(asset_id, abs(qty), **order)
            if side is _BUY
            else self.sell(asset_id, abs(qty), **order)
        )

    def reduce_position(self, asset_id: str, fraction: float, **order: Any) -> Order | None:
        """Trade ``fraction`` (0..1) of the position back toward flat; None if < 1 share."""
        if not 0 <= fraction <= 1:
            raise OrderError(f"reduce_position fraction must be in [0, 1], got {fraction}")
        qty = self._round(abs(self.get_position(asset_id)) * fraction)
        if qty <= 0:
            return None
        if self.get_position(asset_id) > 0:
            return self.sell(asset_id, qty, **order)
        return self.buy(asset_id, qty, **order)

    def set_position_percent(
        self, asset_id: str, percent: float, price: float | None = None, **order: Any
    ) -> Order | None:
        """Trade toward a position worth ``percent`` of portfolio value (negative = short)."""
        broker = self._broker()
        target = self._qty_for_value(asset_id, percent * broker.equity(), price, signed=True)
        return self._trade_to(asset_id, target, **order)

    def size_by_confidence(
        self,
        asset_id: str,
        confidence: float,
        max_percent: float = 0.20,
        price: float | None = None,
        **order: Any,
    ) -> Order | None:
        """Target ``max_percent × confidence`` of portfolio value (confidence clipped to 0..1)."""
        weight = max_percent * min(max(confidence, 0.0), 1.0)
        return self.set_position_percent(asset_id, weight, price, **order)

    def rebalance_to_weights(
        self,
        target_weights: Mapping[str, float],
        current_prices: Mapping[str, float] | None = None,
        **order: Any,
    ) -> list[Order]:
        """Trade every asset toward ``weight × portfolio value``; held assets not named go
        to zero. Sells are submitted first so their proceeds fund the buys.
        """
        broker = self._broker()
        equity = broker.equity()
        prices = current_prices or {}
        held = set(broker.positions()) | {o.asset_id for o in broker.open_orders()}
        targets = {asset: 0.0 for asset in held}
        for asset, weight in target_weights.items():
            targets[asset] = self._qty_for_value(
                asset, weight * equity, prices.get(asset), signed=True
            )
        expected = {asset: self._expected_qty(asset) for asset in targets}
        sells_first = sorted(targets, key=lambda a: (targets[a] - expected[a] > 0, a))

        orders: list[Order] = []
        for asset in sells_first:
            placed = self._trade_to(asset, targets[asset], **order)
            if placed is not None:
                orders.append(placed)
        return orders

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

    def _round(self, qty: float) -> float:
        if self._broker().fractional:
            return qty
        return float(math.floor(qty + 1e-9))

    def _qty_for_value(
        self, asset_id: str, value: float, price: float | None, signed: bool = False
    ) -> float:
        price = price if price is not None else self._broker().mark(asset_id)
        if price is None or not price > 0:
            raise OrderError(
                f"no price for {asset_id!r} to size the order; pass price= or wait for its "
                "first bar"
            )
        qty = self._round(abs(value) / price)
        return math.copysign(qty, value) if signed else qty

    def _expected_qty(self, asset_id: str) -> float:
        """Position plus what open orders will add (buys) or remove (sells)."""
        broker = self._broker()
        return broker.position(asset_id) + net_remaining(broker.open_orders(asset_id))

    def _trade_to(self, asset_id: str, target: float, **order: Any) -> Order | None:
        """One order toward ``target``; open orders pulling the other way are cancelled first
        (a pending buy is withdrawn rather than offset by a sell of shares not yet held)."""
        broker = self._broker()
        open_orders = broker.open_orders(asset_id)
        delta = target - broker.position(asset_id) - net_remaining(open_orders)
        if delta and open_orders:
            opposing = _SELL if delta > 0 else _BUY
            stale = [o for o in open_orders if o.side is opposing]
            for open_order in stale:
                broker.cancel(open_order.id)
            if stale:
                delta += net_remaining(stale)
        qty = self._round(abs(delta))
        if qty <= 0:
            return None
        return self.buy(asset_id, qty, **order) if delta > 0 else self.sell(asset_id, qty, **order)


def attach(strategy: Strategy, broker: RuntimeBroker) -> None:
    """Give ``strategy`` its broker for a run, and have the broker report fills and order
    changes to the callbacks the strategy overrides (backtest, paper and live alike)."""
    if type(strategy).on_fill is not Strategy.on_fill:
        broker.fill_listeners.append(strategy.on_fill)
    if type(strategy).on_order is not Strategy.on_order:
        broker.order_listeners.append(strategy.on_order)
    strategy.broker = broker
