"""The broker seams: what a strategy may ask of any broker, and what the runtime drives.

``Broker`` is the strategy's view (positions, cash, orders in). ``RuntimeBroker`` adds what
the loops, the risk layer, the gate and the journal need: the book of orders and fills, and
the timestamp hooks. ``SimulationBroker`` (replay and paper) and ``LiveBroker`` (a venue)
both compose one ``OrderBook`` and implement ``RuntimeBroker``; the dispatcher, the live
runtime, the risk manager, the gate and the journal are typed against these protocols only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tradeloop.broker.orders import Order, OrderRequest
from tradeloop.events import Fill, OrderType, Side, TimeInForce
from tradeloop.portfolio import Portfolio, Position

if TYPE_CHECKING:
    from tradeloop.broker.book import OrderBook
    from tradeloop.broker.groups import OrderGroup
    from tradeloop.broker.marks import Marks
    from tradeloop.broker.records import FillLog, OrderLog

__all__ = [
    "Bar",
    "BarSource",
    "Broker",
    "Holdings",
    "OrderGate",
    "PreTradeCheck",
    "RuntimeBroker",
]

# open, high, low, close, volume, bar_index
Bar = tuple[float, float, float, float, float, int]


class BarSource(Protocol):
    """The bars present at the current timestamp, by asset."""

    def bar(self, asset_id: str) -> Bar | None: ...


class Holdings(Protocol):
    """What is held and working: read-only questions every broker (and its book) answers."""

    @property
    def fractional(self) -> bool: ...

    @property
    def cash(self) -> float: ...

    def equity(self) -> float: ...

    def valuation(self) -> tuple[float, float]: ...

    def position(self, asset_id: str) -> float: ...

    def positions(self) -> Mapping[str, Position]: ...

    def mark(self, asset_id: str) -> float | None: ...

    def open_orders(self, asset_id: str | None = None) -> list[Order]: ...


@runtime_checkable
class Broker(Holdings, Protocol):
    """The strategy's broker: its holdings, and orders in."""

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

    def submit_request(self, request: OrderRequest) -> Order:
        """An order with options (trailing stop, good-till-date, sizing at the fill)."""
        ...

    def submit_group(
        self, parent: OrderRequest | None, legs: list[OrderRequest], *, oco: bool
    ) -> OrderGroup:
        """An OCO (no parent), an OTO or a bracket (``tradeloop.broker.groups``)."""
        ...

    def cancel(self, order_id: int, message: str = "cancelled by strategy") -> bool: ...


class OrderGate(Protocol):
    """Hard pre-trade limits (``tradeloop.risk.gate.PreTradeGate``): "" accepts ``order``,
    anything else is the reason it is rejected."""

    def review(self, holdings: Holdings, order: Order) -> str: ...


# (holdings, asset, side, qty, reference price) -> (allowed qty, message): a risk guard
PreTradeCheck = Callable[[Holdings, str, Side, float, float], tuple[float, str]]


class RuntimeBroker(Broker, Protocol):
    """What the loops (dispatcher, live runtime), risk, gate and journal drive."""

    @property
    def book(self) -> OrderBook: ...

    @property
    def initial_cash(self) -> float: ...

    @property
    def portfolio(self) -> Portfolio: ...

    @property
    def marks(self) -> Marks: ...

    @property
    def orders(self) -> OrderLog: ...

    @property
    def fills(self) -> FillLog: ...

    @property
    def fill_listeners(self) -> list[Callable[[Fill], None]]: ...

    @property
    def order_listeners(self) -> list[Callable[[Order], None]]: ...

    @property
    def pre_trade_checks(self) -> list[PreTradeCheck]: ...

    def begin_timestamp(
        self, ts_ns: int, bars: BarSource, timestamp: datetime | None = None
    ) -> None:
        """Move to ``ts_ns`` (a simulator fills what the new bars allow)."""

    def end_timestamp(self) -> None:
        """The strategy has decided at this timestamp (a simulator fills at-close orders)."""

    def exit_position(
        self, asset_id: str, base_price: float, reason: str, order_type: OrderType, bar: Bar
    ) -> None:
        """Close the whole position now: a protective exit of the risk layer."""

    def reserved(self) -> dict[int, float]: ...

    def buying_power_reserved(self) -> float: ...

    def restore(
        self,
        orders: list[Order],
        fills: list[Fill],
        reserve: dict[int, float],
        reserved_total: float,
        marks: dict[str, float],
    ) -> None: ...
