"""AlpacaClient: the ``VenueClient`` for Alpaca's trading API (the asyncio shell of the codec).

- Order classes go whole (``native_order_classes``: bracket, oco, oto; trailing stops as
  ``trailing_stop``; ``order_classes``); the legs Alpaca names are mapped to ours.
- Orders are conformed to the asset's rules (``instruments``: fractionable, 9-decimal
  fractions only as ``day``, the sub-penny ticks) and sent with exact decimal strings; an
  order that cannot conform is refused here, unsent (``OrderRejectedError`` naming the rule).
- ``submit`` never retries. 422 "client_order_id must be unique" means the order exists: it
  is looked up and returned; if the lookup does not see it yet, ``OutcomeUnknownError``.
- ``order`` returns None on a 404. Right after a submit that is "not seen yet", not "never
  placed": the caller keeps looking with backoff until its deadline (the core does).
- ``executions()`` is one trade_updates connection: it authenticates and listens, then books
  what the venue reported since the last connection from the FILL activities (the catch-up),
  then yields stream fills (every fill once, keyed by the venue's execution id) and the
  other order events as ``VenueOrderState`` (they settle unknown outcomes). It ends only
  by raising (a drop, the documented error frame: ``ConnectionLostError``); calling it again
  (the supervisor does) reconnects, re-authenticates, re-listens and catches up again.
- ``fees(since_ns)``: FEE/CFEE activities (regulatory fees) with their ids, for the cash.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import structlog

from adapters.alpaca.codec import rfc3339
from adapters.alpaca.config import AlpacaSettings
from adapters.alpaca.errors import ClientIdExistsError, Operation
from adapters.alpaca.order_classes import CLASSES, LegMap
from adapters.alpaca.rest import AlpacaRest
from adapters.alpaca.rules import rules_from_asset
from adapters.alpaca.trade_stream import TradeStream
from adapters.alpaca.trading import (
    FEE_ACTIVITY_TYPES,
    alpaca_client_order_id,
    decode_activity,
    decode_fee,
    decode_order,
    encode_order,
    fill_key,
    group_client_order_id,
)
from tradeloop.broker.instruments import InstrumentRules
from tradeloop.errors import (
    ConfigError,
    OrderError,
    OrderRejectedError,
    VenueProtocolError,
)
from tradeloop.events import OrderStatus
from tradeloop.venue import AccountFee, Execution, VenueOrder, VenueOrderState, VenueSnapshot

__all__ = ["AlpacaClient"]

_PAGE = 100  # activities per page
_ORDERS_PAGE = 500  # the most GET /v2/orders returns at once
_CATCH_UP_MARGIN_NS = 5_000_000_000  # re-read fills from this long before the last frame
_SEEN_MAX = 100_000
_OPEN = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)


class AlpacaClient:
    """Orders, lookups, rules, the account snapshot, fills and fees of one Alpaca account."""

    native_order_classes = CLASSES  # bracket, oco, oto: sent whole (``order_classes``)

    def __init__(self, settings: AlpacaSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.rest = AlpacaRest(settings, clock)
        self.stream_connections = 0
        self.caught_up = 0  # fills booked from the activities after a (re)connect
        self.id_mismatches = 0  # REST fills whose id differed from the stream's for the same fill
        self._ours: dict[str, str] = {}  # venue client order id → ours
        self._legs = LegMap(self._ours)  # the legs of the groups sent whole (they are Alpaca's)
        self._cid_of_order: dict[str, str] = {}  # venue order id → our client order id
        self._rules: dict[str, InstrumentRules] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()  # trade ids yielded
        self._trade_of_fill: OrderedDict[tuple[str, Decimal], str] = OrderedDict()  # → stream id
        self._since_ns = 0
        self._log = structlog.get_logger().bind(component="alpaca_client")

    @property
    def rate_limited(self) -> int:
        return self.rest.rate_limited

    @property
    def clock(self) -> Callable[[], float]:
        return self.rest.clock

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the session and check the keys (``GET /v2/account``)."""
        self.rest.open()
        try:
            await self.rest.read(Operation.READ, "/v2/account")
        except BaseException:
            await self.close()
            raise
        self._since_ns = self._now_ns() - _CATCH_UP_MARGIN_NS

    async def close(self) -> None:
        await self.rest.close()

    # -- rules --------------------------------------------------------------------------------

    async def instruments(self, asset_ids: Iterable[str]) -> dict[str, InstrumentRules]:
        """Each asset's rules from ``GET /v2/assets/{symbol}`` (fetched now, then cached)."""
        out: dict[str, InstrumentRules] = {}
        for asset_id in asset_ids:
            raw = await self.rest.read(Operation.ASSET, f"/v2/assets/{asset_id}")
            if raw is None:
                raise ConfigError(
                    f"alpaca: no asset {asset_id!r} (GET /v2/assets/{asset_id} answered 404). "
                    "Fix: check the ticker in [venue] symbols"
                )
            out[asset_id] = self._rules[asset_id] = rules_from_asset(_json(raw, "asset"))
        return out

    async def _rules_for(self, asset_id: str) -> InstrumentRules:
        rules = self._rules.get(asset_id)
        return rules if rules is not None else (await self.instruments([asset_id]))[asset_id]

    # -- orders -------------------------------------------------------------------------------

    async def submit(self, order: VenueOrder) -> VenueOrderState:
        """Place ``order``; ``OrderRejectedError`` if refused, ``OutcomeUnknownError`` if unsure."""
        try:
            body = encode_order(order, await self._rules_for(order.asset_id))
        except OrderError as err:
            raise OrderRejectedError(f"not sent: {err}") from err
        cid = order.client_order_id
        if order.order_class == "simple":
            self._ours[body["client_order_id"]] = cid
        else:
            self._legs.expect(order, body["client_order_id"])
        try:
            raw = await self.rest.send(Operation.SUBMIT, "POST", "/v2/orders", json=body)
        except ClientIdExistsError:
            existing = await self.order(cid, order.asset_id)  # placed before: adopt it
            if existing is None:
                raise
            self._log.warning("order_already_placed", client_order_id=cid)
            return existing
        return self._order_state(raw)

    async def cancel(self, client_order_id: str, asset_id: str) -> None:
        """Ask to cancel; ``OrderRejectedError`` when there is no open order to cancel."""
        state = await self.order(client_order_id, asset_id)
        if state is None:
            raise OrderRejectedError(f"cancel {client_order_id}: alpaca has no such order")
        if state.status not in _OPEN:
            raise OrderRejectedError(
                f"cancel {client_order_id}: the order is already {state.status.value}"
            )
        await self.rest.send(Operation.CANCEL, "DELETE", f"/v2/orders/{state.venue_order_id}")
        self._log.info("cancel_requested", client_order_id=client_order_id)

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None:
        """The venue's view of one order by client id; None while Alpaca does not know it
        (right after a submit that can mean "not visible yet": look again with backoff)."""
        parent = self._legs.unnamed_parent(client_order_id)
        if parent is not None:  # a leg whose Alpaca id is not known here (after a restart)
            await self._name_legs(parent)
        venue_cid = self._legs.venue_cid(client_order_id, alpaca_client_order_id(client_order_id))
        self._ours.setdefault(venue_cid, client_order_id)
        raw = await self.rest.read(
            Operation.LOOKUP, "/v2/orders:by_client_order_id", {"client_order_id": venue_cid}
        )
        return None if raw is None else self._order_state(raw)

    def remember_group(self, order: VenueOrder) -> None:
        """A group this account holds from before a restart (``LiveBroker.restore_live``):
        its legs are named from its order's ``legs`` when one of them is looked up."""
        self._legs.expect(order, group_client_order_id(order))

    async def _name_legs(self, parent_venue_cid: str) -> None:
        """Read the group's order with its legs (``nested=true``) and name them."""
        found = await self.rest.read(
            Operation.LOOKUP, "/v2/orders:by_client_order_id", {"client_order_id": parent_venue_cid}
        )
        if found is None:
            return
        order_id = str(_json(found, "order").get("id"))
        raw = await self.rest.read(Operation.LOOKUP, f"/v2/orders/{order_id}", {"nested": "true"})
        if raw is not None:
            self._legs.learn(_json(raw, "order"))

    async def snapshot(self) -> VenueSnapshot:
        """Cash, signed positions and open orders, as Alpaca sees them."""
        account = _json(await self.rest.read(Operation.READ, "/v2/account"), "account")
        positions = _json(await self.rest.read(Operation.READ, "/v2/positions"), "positions")
        try:
            cash = float(account["cash"])
            held = {}
            for p in positions:
                qty = abs(float(p["qty"]))
                held[str(p["symbol"])] = -qty if p.get("side") == "short" else qty
        except (KeyError, TypeError, ValueError) as err:
            raise VenueProtocolError(f"account snapshot not understood ({err!r})") from err
        return VenueSnapshot(cash, held, await self._open_orders())

    async def _open_orders(self) -> list[VenueOrderState]:
        """``GET /v2/orders?status=open``, oldest first, paged by submission time."""
        params = {"status": "open", "limit": str(_ORDERS_PAGE), "direction": "asc"}
        found: dict[str, VenueOrderState] = {}
        while True:
            page = _json(await self.rest.read(Operation.READ, "/v2/orders", params), "orders")
            for raw in page:
                self._legs.learn(raw)
                if raw.get("status") == "held":
                    continue  # a leg waiting for its parent's fill: held in the book too, not open
                state = decode_order(raw, self._ours)
                self._cid_of_order[state.venue_order_id] = state.client_order_id
                found[state.venue_order_id] = state
            if len(page) < _ORDERS_PAGE:
                return list(found.values())
            params["after"] = str(page[-1]["submitted_at"] or page[-1]["created_at"])

    # -- fills --------------------------------------------------------------------------------

    async def executions(self) -> AsyncIterator[Execution | VenueOrderState]:
        """One trade_updates connection: the catch-up, then live fills and order updates
        (accepted, cancelled, expired, rejected: they settle unknown outcomes at once; see
        the module doc)."""
        stream = TradeStream(self.settings, self.rest.session, self._ours, self._legs.learn)
        await stream.open()
        self.stream_connections += 1
        self._log.info("trade_stream_listening", connections=self.stream_connections)
        try:
            for execution in await self.recent_executions(self._since_ns):
                if self._first_time(execution):
                    self.caught_up += 1
                    yield execution
            async for event in stream.events():
                self._since_ns = self._now_ns() - _CATCH_UP_MARGIN_NS
                if isinstance(event, VenueOrderState):
                    self._cid_of_order[event.venue_order_id] = event.client_order_id
                    yield event
                    continue
                execution = self._canonical(event.execution, event.key)
                if self._first_time(execution):
                    yield execution
        finally:
            await stream.close()

    def _canonical(self, execution: Execution, key: tuple[str, Decimal]) -> Execution:
        """The trade id this fill (order, quantity after it) was first seen under.

        The docs do not say in words that a FILL activity's uuid is the stream's
        execution_id; should they differ, one fill from both sources stays one trade id."""
        known = self._trade_of_fill.setdefault(key, execution.trade_id)
        if len(self._trade_of_fill) > _SEEN_MAX:
            self._trade_of_fill.popitem(last=False)
        if known == execution.trade_id:
            return execution
        self.id_mismatches += 1
        self._log.warning("fill_id_mismatch", first=known, now=execution.trade_id)
        return replace(execution, trade_id=known)

    def _first_time(self, execution: Execution) -> bool:
        if execution.trade_id in self._seen:
            return False
        self._seen[execution.trade_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        return True

    async def recent_executions(self, since_ns: int) -> list[Execution]:
        """Fills at or after ``since_ns`` from the FILL account activities (oldest first)."""
        out: list[Execution] = []
        for activity in await self._activities("/v2/account/activities/FILL", {}, since_ns):
            cid = await self._cid_for_order(str(activity.get("order_id")))
            execution = decode_activity(activity, cid, self._ours)
            key = fill_key(str(activity.get("order_id")), activity.get("cum_qty"))
            execution = self._canonical(execution, key)
            if execution.ts_ns >= since_ns:
                out.append(execution)
        return out

    async def fees(self, since_ns: int) -> list[AccountFee]:
        """FEE/CFEE activities from a day before ``since_ns`` on (fees may carry only a date),
        once each by id, oldest first; the caller books each ``fee_id`` once."""
        params = {"activity_types": ",".join(FEE_ACTIVITY_TYPES)}
        since = max(0, since_ns - 86_400_000_000_000)
        rows = await self._activities("/v2/account/activities", params, since)
        unique = {fee.fee_id: fee for fee in map(decode_fee, rows)}  # the venue's order (asc)
        return list(unique.values())

    async def _activities(
        self, path: str, extra: dict[str, str], since_ns: int
    ) -> list[dict[str, Any]]:
        params = {
            **extra,
            "after": rfc3339(max(0, since_ns - 1_000_000_000)),  # "after" is exclusive
            "direction": "asc",
            "page_size": str(_PAGE),
        }
        rows: list[dict[str, Any]] = []
        while True:
            page = _json(await self.rest.read(Operation.READ, path, params), "activities")
            rows.extend(page)
            if len(page) < _PAGE:
                return rows
            params["page_token"] = str(page[-1]["id"])

    async def _cid_for_order(self, venue_order_id: str) -> str:
        cid = self._cid_of_order.get(venue_order_id)
        if cid is None:
            raw = await self.rest.read(Operation.LOOKUP, f"/v2/orders/{venue_order_id}")
            if raw is None:
                return f"alpaca:{venue_order_id}"  # not ours to book: the broker counts it
            cid = self._order_state(raw).client_order_id
        return cid

    # -- helpers ------------------------------------------------------------------------------

    def _order_state(self, raw: bytes | None) -> VenueOrderState:
        order = _json(raw, "order")
        if isinstance(order, dict):
            self._legs.learn(order)
        state = decode_order(order, self._ours)
        self._cid_of_order[state.venue_order_id] = state.client_order_id
        return state

    def _now_ns(self) -> int:
        return int(self.rest.clock() * 1e9)


def _json(raw: bytes | None, what: str) -> Any:
    try:
        return orjson.loads(raw or b"")
    except orjson.JSONDecodeError as err:
        raise VenueProtocolError(f"{what} not understood: {(raw or b'')[:160]!r}") from err
