"""LiveBroker: the broker seam in front of a real venue (``tradeloop.venue.VenueClient``).

It composes the same ``OrderBook`` as the simulator (positions, cash, open orders, the gate
and the pre-trade checks, the venue's instrument rules), but nothing is matched here: an
accepted order, already on the venue's step and tick and with the client order id it was
given when placed, waits in ``outbox`` until the runtime has journaled it, then ``send``
hands it to the venue as exact decimal strings; fills arrive as ``Execution``s and are
booked by ``apply``, once per trade id (the venue's execution id).

Order groups (OCO, OTO, brackets) go whole where the client declares the class in
``native_order_classes`` (``broker.routing``): the venue then triggers and cancels the legs,
and the book follows its fills. Otherwise they are emulated: the working orders go out, a
child when its parent's fill comes in, and an OCO sibling's cancel when a leg fills.

An order whose submit timed out (or hit a 5xx, or was refused as a duplicate client id) is
``UNKNOWN``: it may exist. ``resolve`` looks it up by client order id with backoff
(``tradeloop.broker.lookups``) and adopts what the venue says; a fill or an order update
from the stream (``apply``, ``observe``) settles it at once. Only an order the venue still
does not know after ``unknown_deadline_s`` is marked rejected ("never placed"). Nothing is
ever submitted twice: an order leaves the outbox before its request goes out. After a
restart every order the journal left working is ``UNKNOWN`` until looked up.

Cash truth beyond fills (fees paid in a third asset, account fees outside fills, what
reconciliation adopts) is kept in ``ledger`` (``tradeloop.broker.ledger``), journaled with
``live_state`` and re-applied by ``restore_live``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from tradeloop.broker.base import Bar, BarSource
from tradeloop.broker.book import EPS, OrderBook
from tradeloop.broker.front import BookFront
from tradeloop.broker.groups import OrderGroup, place_group
from tradeloop.broker.ledger import VenueLedger
from tradeloop.broker.lookups import Lookups
from tradeloop.broker.orders import Order, OrderRequest
from tradeloop.broker.routing import group_venue_order, native_class, venue_order
from tradeloop.errors import (
    AdapterError,
    ConfigError,
    DuplicateOrderError,
    OrderRejectedError,
    RateLimitError,
)
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.portfolio import Position
from tradeloop.venue import (
    AccountFee,
    Execution,
    InstrumentSource,
    VenueClient,
    VenueOrderState,
    VenueSnapshot,
)

__all__ = ["LiveBroker"]

_CLOSED_BY_VENUE = {
    OrderStatus.CANCELLED: "cancelled at the venue",
    OrderStatus.EXPIRED: "expired at the venue",
    OrderStatus.REJECTED: "rejected by the venue",
}


class _NoBars:
    def bar(self, asset_id: str) -> Bar | None:
        return None


class LiveBroker(BookFront):
    """Orders to ``client``, fills from it; the book is kept here and reconciled to it."""

    def __init__(
        self,
        client: VenueClient,
        initial_cash: float,
        *,
        fractional: bool = False,
        allow_short: bool = False,
        client_id: Callable[[Order], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        unknown_deadline_s: float = 60.0,
    ) -> None:
        self.book = OrderBook(initial_cash, fractional=fractional, allow_short=allow_short)
        # the journal's deterministic ids (``Journal.client_id_minter``): a restart that
        # decides the same order again gives it the same id, which the venue refuses twice
        self.book.mint_client_id = client_id
        self.client = client
        self._bars: BarSource = _NoBars()
        self.outbox: list[Order] = []
        self.cancels: list[Order] = []
        self.trade_ids: list[str] = []  # one per fill, aligned with ``fills`` (journaled)
        self.duplicate_executions = 0
        self.foreign_executions = 0  # fills of orders this run did not place
        self.lookups = Lookups(unknown_deadline_s)
        self.ledger = VenueLedger(self.book.portfolio, time.time_ns())
        self.elsewhere_by_fill: dict[int, float] = {}  # fill index → its third-asset fee value
        self._seen_trades: set[str] = set()
        self._by_cid: dict[str, Order] = {}
        self._cancel_reasons: dict[int, str] = {}  # order id → why its cancel was asked
        self._refused_exits: dict[str, float] = {}  # asset → the unsellable rest, told once
        self._clock = clock
        self._not_before = 0.0
        self._log = structlog.get_logger().bind(component="live_broker")
        # groups are emulated here: a child goes out when its parent's fill comes in, and an
        # OCO sibling's cancel goes to the venue (see ``broker.groups``)
        self.book.activation_listeners.append(self._send_later)
        self.book.cancel_linked = self._cancel_linked
        self.native_classes = frozenset(getattr(client, "native_order_classes", ()))

    # -- the strategy's side -------------------------------------------------------------------

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
        """Checked here (gate, guards, instrument rules, cash); sent by ``send`` once
        journaled."""
        placed = self.book.place(
            asset_id, side, qty, order_type, limit_price, stop_price, tif, reason
        )  # positional: keywords cost a call more
        self._queue(placed)
        return placed

    def submit_request(self, request: OrderRequest) -> Order:
        """An order with options, checked here and sent by ``send`` once journaled."""
        placed = self.book.place_request(request)
        self._queue(placed)
        return placed

    def submit_group(
        self, parent: OrderRequest | None, legs: list[OrderRequest], *, oco: bool
    ) -> OrderGroup:
        """An OCO, OTO or bracket, emulated: the working orders go out now, held children
        when their parent fills, and a filled leg's siblings are cancelled at the venue."""
        group = place_group(self.book, parent, legs, oco)
        order_class = native_class(group, self.native_classes)
        takes = getattr(self.client, "takes_order_class", None)  # optional: see tradeloop.venue
        if order_class and takes is not None and not takes(group_venue_order(group, order_class)):
            order_class = ""  # the venue has the class, not this shape of it: emulated
        if order_class and group.orders[0].is_open:
            group.venue_class = order_class
            head = group.orders[0]
            self._queue(head)
            for order in group.orders[1:]:
                self._queue(order, send=False)  # the venue holds the legs
            return group
        for order in group.orders:
            self._queue(order)
        return group

    def _queue(self, order: Order, send: bool = True) -> None:
        if not order.client_order_id:
            raise ConfigError(
                "LiveBroker needs client order ids: build it with "
                "client_id=journal.client_id_minter()"
            )
        self._by_cid[order.client_order_id] = order
        if send and order.is_open:
            self.outbox.append(order)

    def _send_later(self, order: Order) -> None:
        """An order that became live after its submission (an OTO child): send it, unless
        the venue holds it already (a native group)."""
        if order.group is None or not order.group.venue_class:
            self.outbox.append(order)

    def _cancel_linked(self, order: Order, message: str) -> None:
        """An OCO sibling after a leg filled: a native group's venue cancels it itself."""
        if order.group is not None and order.group.venue_class:
            self.book.close(order, OrderStatus.CANCELLED, f"{message} (cancelled by the venue)")
        else:
            self.cancel(order.id, message)

    def cancel(self, order_id: int, message: str = "cancelled by strategy") -> bool:
        order = self.book.order(order_id)
        if order is None:
            return False
        if order in self.outbox:  # never left: cancel here
            self.outbox.remove(order)
            return self.book.cancel(order_id, message)
        if not (order.is_open or order.status is OrderStatus.UNKNOWN):
            return False
        if order not in self.cancels:
            self._cancel_reasons[order.id] = message  # said when the venue confirms
            self.cancels.append(order)
        return True

    def exit_position(
        self, asset_id: str, base_price: float, reason: str, order_type: OrderType, bar: Bar
    ) -> None:
        """A protective exit: a market order for what is held and not already being closed.
        It skips the gate (reducing is allowed in every mode, ``halted`` included) but not
        the venue's rules: a position below the venue's minimum is dust it cannot sell."""
        held = self.position(asset_id)
        closing_side = Side.SELL if held > 0 else Side.BUY
        being_closed = sum(
            o.remaining for o in self.open_orders(asset_id) if o.side is closing_side
        )
        closing = held - being_closed if held > 0 else held + being_closed
        if closing * held <= 0 or abs(closing) <= EPS:
            return  # flat, or already being closed by working orders
        if self._refused_exits.get(asset_id) == closing:
            return  # the same dust was refused before: the strategy has been told once
        order = self.book.place_exit(asset_id, closing, OrderType.MARKET, reason, None)
        problem = self.book.conform_order(order) if self.book.instruments else ""
        if problem:
            self._refused_exits[asset_id] = closing
            self.book.close(order, OrderStatus.REJECTED, problem)
            self._log.warning("protective_exit_refused", asset=asset_id, reason=problem)
            return
        self._refused_exits.pop(asset_id, None)
        self.book.tell(order)
        self._queue(order)

    # -- the runtime's side ---------------------------------------------------------------------

    def begin_timestamp(
        self, ts_ns: int, bars: BarSource, timestamp: datetime | None = None
    ) -> None:
        """Move to ``ts_ns``; the venue, not this broker, matches orders."""
        self.book.move(ts_ns, timestamp)
        self._bars = bars

    def end_timestamp(self) -> None:
        """Nothing to fill at a close: the venue matches."""

    async def load_instruments(self, asset_ids: Sequence[str]) -> int:
        """Fetch the venue's instrument rules (if its client has them) for ``asset_ids`` and
        every asset with a price or a position; return how many assets have rules."""
        if not isinstance(self.client, InstrumentSource):
            return 0
        wanted = sorted({*asset_ids, *self.marks, *self.positions()})
        if wanted:
            self.book.instruments.update(await self.client.instruments(wanted))
        return len(self.book.instruments)

    async def send(self) -> None:
        """Submit the journaled outbox and the requested cancels, in order. An order leaves
        the outbox before its request goes out, so nothing can be sent twice; an order placed
        during this pass (by a callback) waits for the next one, after the journal has it; one
        cancelled while a request was out (a halt from another task) is not sent."""
        for order in list(self.outbox):
            if self._clock() < self._not_before:
                break
            if order not in self.outbox:
                continue  # cancelled here while an earlier request was out
            self.outbox.remove(order)
            group = order.group
            order_class = group.venue_class if group is not None else ""
            request = (
                group_venue_order(group, order_class)
                if group is not None and order_class
                else venue_order(order)
            )
            try:
                state = await self.client.submit(request)
            except RateLimitError as err:
                self.outbox.insert(0, order)  # refused with 429, not executed: try again
                self._not_before = self._clock() + err.retry_after_s
                self._log.warning("rate_limited", retry_after_s=err.retry_after_s, error=str(err))
                break
            except DuplicateOrderError as err:  # the client id exists: it is there
                self._unknown(order, f"the venue already has this client id ({err})")
            except OrderRejectedError as err:
                self.book.close(order, OrderStatus.REJECTED, f"rejected by the venue: {err}")
                if group is not None and order_class:  # the legs went nowhere either
                    for leg in group.orders:
                        if leg.is_open:
                            self.book.close(leg, OrderStatus.REJECTED, f"group rejected: {err}")
            except AdapterError as err:  # a timeout, a 5xx, a lost connection: it may exist
                self._unknown(order, f"outcome unknown ({err})")
            except BaseException as err:
                self._unknown(order, f"outcome unknown ({type(err).__name__}: {err})")
                raise
            else:
                self._adopt(order, state)
        for order in list(self.cancels):
            if not (order.is_open or order.status is OrderStatus.UNKNOWN):
                self.cancels.remove(order)
                continue
            try:
                await self.client.cancel(order.client_order_id, order.asset_id)
            except OrderRejectedError as err:
                self._log.info("cancel_refused", order_id=order.id, error=str(err))
            except AdapterError as err:
                self._log.warning("cancel_retry_later", order_id=order.id, error=str(err))
                continue  # a cancel is safe to send again
            else:
                reason = self._cancel_reasons.pop(order.id, "cancelled by strategy")
                self.book.close(order, OrderStatus.CANCELLED, reason)
            self.cancels.remove(order)

    async def resolve(self) -> int:
        """Look up the ``UNKNOWN`` orders that are due (see ``Lookups``); return how many
        are still unknown. Not found after ``unknown_deadline_s``: rejected, never placed."""
        left = 0
        for order in self.open_orders():  # an unknown order stays among the open ones
            if order.status is not OrderStatus.UNKNOWN:
                continue
            cid = order.client_order_id
            now = self._clock()
            if not self.lookups.due(cid, now):
                left += 1
                continue
            try:
                state = await self.client.order(cid, order.asset_id)
            except AdapterError as err:
                self.lookups.missed(cid, now)
                self._log.warning("order_lookup_failed", client_order_id=cid, error=str(err))
                left += 1
                continue
            if state is not None:
                self.lookups.forget(cid)
                self._adopt(order, state)
            elif self.lookups.missed(cid, now):
                looked = self.lookups.attempts(cid)
                waited = self.lookups.waited_s(cid, now)
                self.lookups.forget(cid)
                self.book.close(
                    order,
                    OrderStatus.REJECTED,
                    f"never reached the venue: not found by client id in {waited:.1f} s "
                    f"({looked} lookups)",
                )
            else:
                left += 1
                continue
            self._log.info("order_resolved", client_order_id=cid, status=order.status.value)
        return left

    def apply(self, execution: Execution) -> Fill | None:
        """Book one venue fill (once per trade id); None for a repeat or a stranger's fill."""
        if execution.trade_id in self._seen_trades:
            self.duplicate_executions += 1
            return None
        self._seen_trades.add(execution.trade_id)
        order = self._by_cid.get(execution.client_order_id)
        if order is None:
            self.foreign_executions += 1
            self._log.warning(
                "foreign_execution",
                trade_id=execution.trade_id,
                client_order_id=execution.client_order_id,
                asset=execution.asset_id,
            )
            return None
        if order.status is OrderStatus.UNKNOWN:  # a fill proves it exists
            self.lookups.forget(order.client_order_id)
            order.status = OrderStatus.ACCEPTED
            order.message = ""
        bar = self._bars.bar(order.asset_id)
        fill = self.book.book(
            order,
            execution.qty,
            execution.price,
            execution.commission,
            0.0,
            bar[5] if bar is not None else -1,
            ts_ns=execution.ts_ns,
        )
        self.trade_ids.append(execution.trade_id)
        self.ledger.note_fill(execution)
        if execution.commission_asset:
            self.elsewhere_by_fill[len(self.fills) - 1] = execution.commission
        if execution.order_done and order.is_open:
            self.book.close(order, OrderStatus.FILLED, "")  # the rest went to a fee in kind
        return fill

    def book_fee(self, fee: AccountFee) -> bool:
        """Book an account fee outside fills (see ``VenueLedger.book_fee``)."""
        new = self.ledger.book_fee(fee)
        if new:
            self._log.info("account_fee_booked", fee_id=fee.fee_id, amount=fee.amount)
        return new

    def observe(self, state: VenueOrderState) -> None:
        """An order update from the stream: settles an unknown outcome, closes what the
        venue closed (cancelled, expired, rejected). Updates of finished orders are old."""
        order = self._by_cid.get(state.client_order_id)
        if order is None or not (order.is_open or order.status is OrderStatus.UNKNOWN):
            return
        self.lookups.forget(order.client_order_id)
        self._adopt(order, state)

    def restore_live(
        self, trade_ids: list[str], live_state: Mapping[str, Any] | None = None
    ) -> None:
        """After ``restore``: index the journaled orders by client id, remember booked trades,
        re-apply what reconciliation adopted, and treat every order the journal left working
        as ``UNKNOWN`` (it may or may not have been sent)."""
        self._by_cid = {order.client_order_id: order for order in self.orders}
        self.trade_ids = list(trade_ids)
        self._seen_trades = set(trade_ids)
        for order in self.orders:
            if order.is_open:
                order.status = OrderStatus.UNKNOWN
        remember = getattr(self.client, "remember_group", None)  # optional: tradeloop.venue
        if remember is not None:
            groups = {o.group for o in self.orders if o.group is not None and o.group.venue_class}
            for group in sorted(groups, key=lambda g: g.id):
                remember(group_venue_order(group, group.venue_class))
        self.ledger.restore(live_state or {}, self._position)

    def live_state(self) -> dict[str, Any]:
        """What ``restore_live`` needs besides orders and fills (journaled every commit)."""
        return self.ledger.state()

    def adopt(self, snapshot: VenueSnapshot) -> None:
        """Make the book the venue's: its positions and cash are the authority (kept in the
        ledger's adjustments, journaled, so a restart rebuilds the same numbers)."""
        self.ledger.adopt(snapshot, self._position)

    async def settle(self, snapshot: VenueSnapshot) -> None:
        """Orders open here but not at the venue: look each up and take its word; orders of
        unknown outcome that the venue lists as open: they exist."""
        listed = {state.client_order_id: state for state in snapshot.open_orders}
        for order in self.open_orders():
            cid = order.client_order_id
            if not cid:
                continue
            if order.status is OrderStatus.UNKNOWN:
                if cid in listed:
                    self.observe(listed[cid])
            elif cid not in listed:
                state = await self.client.order(cid, order.asset_id)
                if state is not None:
                    self._adopt(order, state)

    # -- internals -----------------------------------------------------------------------------

    def _unknown(self, order: Order, why: str) -> None:
        order.status = OrderStatus.UNKNOWN
        order.message = f"{why}; looking it up"
        self.book.tell(order)
        self._log.warning("order_outcome_unknown", client_order_id=order.client_order_id, error=why)

    def _position(self, asset_id: str) -> Position:
        positions = self.book.portfolio.positions
        position = positions.get(asset_id)
        if position is None:
            position = positions[asset_id] = Position(asset_id)
            position.avg_price = self.marks.get(asset_id, 0.0)
        return position

    def _adopt(self, order: Order, state: VenueOrderState) -> None:
        closing = _CLOSED_BY_VENUE.get(state.status)
        if closing is not None and state.filled_qty <= order.filled_qty:
            self.book.close(order, state.status, state.message or closing)
        elif state.status is OrderStatus.FILLED and order.filled_qty > 0:
            self.book.close(order, OrderStatus.FILLED, "")  # its fills are booked (net of fees)
        elif order.status is OrderStatus.UNKNOWN:
            # live (or filled, with the fills still to come through ``apply``)
            order.status = (
                OrderStatus.PARTIALLY_FILLED if order.filled_qty else OrderStatus.ACCEPTED
            )
            order.message = ""
            self.book.tell(order)
