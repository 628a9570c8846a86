"""The sizing helpers of ``Strategy``: orders worth a fraction of portfolio value, toward a
target position, or flattening one. They place orders through the strategy's ``buy``/``sell``.

Sizing rules, shared by every helper:
- "percent" means a fraction of portfolio value (cash + positions at their latest close):
  ``buy_percent(a, 0.10)`` buys about 10 % of equity worth of ``a``.
- the sizing price is the asset's latest close (the bar being handled) unless ``price=`` is
  given; whole shares are rounded toward zero unless the broker trades fractions.
- ``sizing="fill"`` sizes at the price the order fills at instead (the next open, as
  backtesting.py does): the quantity is worked out by the broker at the fill, the largest
  whose cost, commission included, fits the fraction of equity then (for a target helper:
  the trade to the target position worked out at that price), so an all-in entry is never
  refused for a gap. The default, ``sizing="close"``, fixes it at the decision.
- helpers that aim at a target (``set_position_percent``, ``size_by_confidence``,
  ``rebalance_to_weights``) count orders still open, so calling them every bar never
  stacks duplicate orders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tradeloop.broker.base import Broker
from tradeloop.broker.orders import Order, net_remaining
from tradeloop.errors import OrderError
from tradeloop.events import Side
from tradeloop.strategy.requests import order_request

__all__ = ["SizingHelpers"]

_BUY, _SELL = Side.BUY, Side.SELL
_SIZINGS = ("close", "fill")


class SizingHelpers:
    """Mixed into ``Strategy``: the helpers that size orders (see the module docstring)."""

    if TYPE_CHECKING:
        # what the helpers use of ``Strategy`` (which defines them)
        buy: Callable[..., Order]
        sell: Callable[..., Order]

        def _broker(self) -> Broker: ...

        def get_portfolio_value(self) -> float: ...

        def get_position(self, asset_id: str) -> float: ...

    def buy_percent(
        self,
        asset_id: str,
        percent: float,
        price: float | None = None,
        sizing: str = "close",
        **order: Any,
    ) -> Order | None:
        """Buy ``percent`` of portfolio value worth of ``asset_id``; None if that is < 1 share.
        ``sizing="fill"`` sizes at the fill price (see the module docstring)."""
        return self._percent_of_equity(_BUY, asset_id, percent, price, sizing, order)

    def sell_percent(
        self,
        asset_id: str,
        percent: float,
        price: float | None = None,
        sizing: str = "close",
        **order: Any,
    ) -> Order | None:
        """Sell ``percent`` of portfolio value worth of ``asset_id``; None if < 1 share.
        ``sizing="fill"`` sizes at the fill price (see the module docstring)."""
        return self._percent_of_equity(_SELL, asset_id, percent, price, sizing, order)

    def close_position(self, asset_id: str, **order: Any) -> Order | None:
        """Cancel the asset's open orders and flatten it with a market order; None if flat."""
        broker = self._broker()
        for open_order in broker.open_orders(asset_id):
            broker.cancel(open_order.id)
        qty = broker.position(asset_id)
        if qty == 0:
            return None
        if qty > 0:
            return self.sell(asset_id, qty, **order)
        return self.buy(asset_id, -qty, **order)

    def reduce_position(self, asset_id: str, fraction: float, **order: Any) -> Order | None:
        """Trade ``fraction`` (0..1) of the position back toward flat; None if < 1 share."""
        if not 0 <= fraction <= 1:
            raise OrderError(f"reduce_position fraction must be in [0, 1], got {fraction}")
        qty = _whole(abs(self.get_position(asset_id)) * fraction, self._broker().fractional)
        if qty <= 0:
            return None
        if self.get_position(asset_id) > 0:
            return self.sell(asset_id, qty, **order)
        return self.buy(asset_id, qty, **order)

    def set_position_percent(
        self,
        asset_id: str,
        percent: float,
        price: float | None = None,
        sizing: str = "close",
        **order: Any,
    ) -> Order | None:
        """Trade toward a position worth ``percent`` of portfolio value (negative = short);
        ``sizing="fill"`` works the target out at the fill price."""
        broker = self._broker()
        fractional = broker.fractional
        target = _qty_for_value(broker, asset_id, percent * broker.equity(), price, fractional)
        weight = percent if _at_fill(sizing) else None
        return self._trade_to(broker, asset_id, target, weight, fractional, order)

    def size_by_confidence(
        self,
        asset_id: str,
        confidence: float,
        max_percent: float = 0.20,
        price: float | None = None,
        sizing: str = "close",
        **order: Any,
    ) -> Order | None:
        """Target ``max_percent × confidence`` of portfolio value (confidence clipped to 0..1)."""
        weight = max_percent * min(max(confidence, 0.0), 1.0)
        return self.set_position_percent(asset_id, weight, price, sizing, **order)

    def rebalance_to_weights(
        self,
        target_weights: Mapping[str, float],
        current_prices: Mapping[str, float] | None = None,
        sizing: str = "close",
        **order: Any,
    ) -> list[Order]:
        """Trade every asset toward ``weight × portfolio value``; held assets not named go
        to zero. Sells are submitted first so their proceeds fund the buys.
        ``sizing="fill"`` works each target out at its fill price.
        """
        at_fill = _at_fill(sizing)
        broker = self._broker()
        equity = broker.equity()
        fractional = broker.fractional
        prices = current_prices or {}
        positions = broker.positions()
        pending: dict[str, list[Order]] = {}  # the open orders, by asset
        for open_order in broker.open_orders():
            pending.setdefault(open_order.asset_id, []).append(open_order)
        targets = dict.fromkeys(positions, 0.0)
        targets.update(dict.fromkeys(pending, 0.0))
        for asset, weight in target_weights.items():
            price = prices.get(asset)
            targets[asset] = _qty_for_value(broker, asset, weight * equity, price, fractional)
        # sells (the target below what is held and pending) first, then buys; by asset
        sells_first: list[tuple[bool, str]] = []
        for asset, target in targets.items():
            position = positions.get(asset)
            open_here = pending.get(asset)
            expected = (0.0 if position is None else position.qty) + (
                net_remaining(open_here) if open_here else 0.0
            )
            sells_first.append((target - expected > 0, asset))
        sells_first.sort()

        orders: list[Order] = []
        for _, asset in sells_first:
            at = target_weights.get(asset, 0.0) if at_fill else None
            placed = self._trade_to(broker, asset, targets[asset], at, fractional, order)
            if placed is not None:
                orders.append(placed)
        return orders

    def _trade_to(
        self,
        broker: Broker,
        asset_id: str,
        target: float,
        weight: float | None,
        fractional: bool,
        order: Mapping[str, Any],
    ) -> Order | None:
        """One order toward ``target``; open orders pulling the other way are cancelled first
        (a pending buy is withdrawn rather than offset by a sell of shares not yet held).
        With a ``weight`` the broker works the target out again at the fill price."""
        open_orders = broker.open_orders(asset_id)
        delta = target - broker.position(asset_id)
        if open_orders:
            delta -= net_remaining(open_orders)
            if delta:
                opposing = _SELL if delta > 0 else _BUY
                stale = [o for o in open_orders if o.side is opposing]
                for open_order in stale:
                    broker.cancel(open_order.id)
                if stale:
                    delta += net_remaining(stale)
        qty = _whole(abs(delta), fractional)
        if qty <= 0:
            return None
        if weight is not None:
            side = _BUY if delta > 0 else _SELL
            return self._sized_at_fill(asset_id, side, qty, weight, True, order)
        if not order:  # (a call with ``**{}`` costs ~0.25 µs more)
            return self.buy(asset_id, qty) if delta > 0 else self.sell(asset_id, qty)
        return self.buy(asset_id, qty, **order) if delta > 0 else self.sell(asset_id, qty, **order)

    def _percent_of_equity(
        self,
        side: Side,
        asset_id: str,
        percent: float,
        price: float | None,
        sizing: str,
        order: Mapping[str, Any],
    ) -> Order | None:
        """``percent`` of portfolio value worth of ``asset_id``, bought or sold."""
        broker = self._broker()
        value = percent * self.get_portfolio_value()
        qty = abs(_qty_for_value(broker, asset_id, value, price, broker.fractional))
        if qty <= 0:
            return None
        if _at_fill(sizing):
            return self._sized_at_fill(asset_id, side, qty, percent, False, order)
        return (
            self.buy(asset_id, qty, **order) if side is _BUY else self.sell(asset_id, qty, **order)
        )

    def _sized_at_fill(
        self,
        asset_id: str,
        side: Side,
        qty: float,
        percent: float,
        target: bool,
        order: Mapping[str, Any],
    ) -> Order:
        """An order the broker sizes at its fill; ``qty`` is the estimate it is admitted at."""
        request = order_request(
            asset_id, side, qty, fill_percent=percent, fill_target=target, **order
        )
        return self._broker().submit_request(request)


def _whole(qty: float, fractional: bool) -> float:
    """``qty`` rounded toward zero to whole units, unless the broker trades fractions."""
    return qty if fractional else float(math.floor(qty + 1e-9))


def _qty_for_value(
    broker: Broker, asset_id: str, value: float, price: float | None, fractional: bool
) -> float:
    """The signed quantity worth ``value`` at ``price`` (the mark if None), rounded toward
    zero."""
    if price is None:
        price = broker.mark(asset_id)
    if price is None or not price > 0:
        raise OrderError(
            f"no price for {asset_id!r} to size the order; pass price= or wait for its first bar"
        )
    return math.copysign(_whole(abs(value) / price, fractional), value)


def _at_fill(sizing: str) -> bool:
    if sizing not in _SIZINGS:
        raise OrderError(
            f"sizing must be one of {_SIZINGS}, got {sizing!r}: 'close' sizes at the decision "
            "bar's close, 'fill' at the price the order fills at"
        )
    return sizing == "fill"
