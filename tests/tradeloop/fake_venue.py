"""An in-process venue (``tradeloop.venue.VenueClient``) that keeps its own book, for the
LiveBroker and reconciliation tests: ``faults`` are raised by the next submits, in order; a
fault named "after" is raised *after* the order was accepted (a 5xx on a live order)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from tradeloop.broker.instruments import InstrumentRules
from tradeloop.broker.orders import Order
from tradeloop.errors import OutcomeUnknownError
from tradeloop.events import OrderStatus, Side
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, VenueSnapshot

T0 = 1_700_000_000 * 10**9


class FakeVenue:
    """A venue with a book (see the module docstring)."""

    def __init__(self, cash: float = 10_000.0) -> None:
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.book: dict[str, VenueOrderState] = {}
        self.submitted: list[str] = []
        self.requests: list[VenueOrder] = []
        self.cancelled: list[str] = []
        self.faults: list[BaseException | str] = []
        self.trades: list[Execution] = []

    async def start(self) -> None:
        return

    async def close(self) -> None:
        return

    async def submit(self, order: VenueOrder) -> VenueOrderState:
        self.submitted.append(order.client_order_id)
        self.requests.append(order)
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, BaseException):
            raise fault
        state = VenueOrderState(
            order.client_order_id, f"v{len(self.book)}", order.asset_id, order.side, order.qty,
            OrderStatus.ACCEPTED,
        )  # fmt: skip
        self.book[order.client_order_id] = state
        if fault == "after":
            raise OutcomeUnknownError("HTTP 503 after the order was accepted")
        return state

    async def cancel(self, client_order_id: str, asset_id: str) -> None:
        self.cancelled.append(client_order_id)
        state = self.book[client_order_id]
        self.book[client_order_id] = VenueOrderState(
            state.client_order_id, state.venue_order_id, state.asset_id, state.side, state.qty,
            OrderStatus.CANCELLED,
        )  # fmt: skip

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None:
        return self.book.get(client_order_id)

    async def snapshot(self) -> VenueSnapshot:
        live = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
        open_orders = [s for s in self.book.values() if s.status in live]
        return VenueSnapshot(self.cash, dict(self.positions), open_orders)

    async def executions(self) -> AsyncIterator[Execution]:
        for trade in self.trades:
            yield trade

    async def recent_executions(self, since_ns: int) -> list[Execution]:
        return [t for t in self.trades if t.ts_ns >= since_ns]

    def fill(self, cid: str, trade_id: str, qty: float, price: float, fee: float) -> Execution:
        """The venue fills ``qty`` of ``cid``: its own book moves, and it reports it."""
        state = self.book[cid]
        done = state.filled_qty + qty
        status = OrderStatus.FILLED if done >= state.qty else OrderStatus.PARTIALLY_FILLED
        self.book[cid] = VenueOrderState(
            cid, state.venue_order_id, state.asset_id, state.side, state.qty, status, done, price
        )
        sign = 1 if state.side is Side.BUY else -1
        self.positions[state.asset_id] = self.positions.get(state.asset_id, 0.0) + sign * qty
        self.cash -= sign * qty * price + fee
        trade = Execution(
            trade_id, cid, state.asset_id, state.side, qty, price, fee, T0 + len(self.trades)
        )
        self.trades.append(trade)
        return trade


def cid(order: Order) -> str:
    return f"cid{order.id}"


class RulesVenue(FakeVenue):
    """A FakeVenue that is also an ``InstrumentSource``: it hands out ``rules``."""

    def __init__(self, rules: dict[str, InstrumentRules], cash: float = 10_000.0) -> None:
        super().__init__(cash)
        self.rules = rules
        self.asked: list[list[str]] = []

    async def instruments(self, asset_ids: Sequence[str]) -> dict[str, InstrumentRules]:
        self.asked.append(list(asset_ids))
        return {a: self.rules[a] for a in asset_ids if a in self.rules}
