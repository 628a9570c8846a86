"""The broker seam: what a strategy (and the runtime) may ask of any broker.

``SimulationBroker`` implements it for replays; the paper and live brokers of the runtime
implement the same methods, which is why a strategy runs unchanged everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from tradeloop.broker.orders import Order
from tradeloop.events import OrderType, Side, TimeInForce
from tradeloop.portfolio import Position

__all__ = ["Bar", "BarSource", "Broker", "OrderGate"]

# open, high, low, close, volume, bar_index
Bar = tuple[float, float, float, float, float, int]


class BarSource(Protocol):
    """The bars present at the current timestamp, by asset."""

    def bar(self, asset_id: str) -> Bar | None: ...


@runtime_checkable
class Broker(Protocol):
    fractional: bool

    @property
    def cash(self) -> float: ...

    def equity(self) -> float: ...

    def position(self, asset_id: str) -> float: ...

    def positions(self) -> Mapping[str, Position]: ...

    def mark(self, asset_id: str) -> float | None: ...

    def open_orders(self, asset_id: str | None = None) -> list[Order]: ...

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
    ) -> Order: ...

    def cancel(self, order_id: int) -> bool: ...


class OrderGate(Protocol):
    """Hard pre-trade limits (``tradeloop.risk.gate.PreTradeGate``): "" accepts ``order``,
    anything else is the reason it is rejected."""

    def review(self, broker: Any, order: Order) -> str: ...
