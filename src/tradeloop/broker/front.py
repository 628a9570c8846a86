"""BookFront: what every broker answers straight from its order book (positions, cash,
orders, the run's records), so the strategy's questions get one answer everywhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tradeloop.broker.base import OrderGate, PreTradeCheck
from tradeloop.broker.book import OrderBook
from tradeloop.broker.costs import CommissionModel, SlippageModel
from tradeloop.broker.marks import Marks
from tradeloop.broker.orders import Order
from tradeloop.broker.records import FillLog, OrderLog
from tradeloop.events import Fill
from tradeloop.portfolio import Portfolio, Position

__all__ = ["BookFront"]


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
    def marks(self) -> Marks:
        return self.book.marks

    @property
    def orders(self) -> OrderLog:
        return self.book.orders

    @property
    def fills(self) -> FillLog:
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
