"""BinanceClient: orders, lookups, instrument rules, the account and fills over Binance spot's
REST and WebSocket APIs (the ``VenueClient`` and ``InstrumentSource`` of tradeloop.venue).

Order lists (OCO, a bracket as OTOCO, OTO) and trailing stops go natively (``order_lists``).
Rules it keeps: a submit is conformed to the symbol's exchangeInfo filters and sent as exact
decimal strings, once (a timeout or a 5xx is ``OutcomeUnknownError``, "Duplicate order sent."
is ``DuplicateOrderError``: both are resolved by ``order(cid)``); errors mean what
``errors.RULES`` says; fills come from the user data stream (``user_stream``: one subscription
per ``executions()`` call, which ends by raising) and, after any gap, from
GET /api/v3/myTrades; a fee in a third asset (BNB) is booked at that asset's ticker price
when it arrives, and named in ``commission_asset`` (``fills``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import orjson
import structlog

from adapters.binance.config import BinanceSettings
from adapters.binance.errors import FilterFailureError, UnknownOrderError
from adapters.binance.fills import (
    Trade,
    order_update_from_report,
    snapshot_from,
    trade_from_report,
    trade_from_row,
)
from adapters.binance.order_lists import LIST_PATHS, list_params, takes, trailing_params
from adapters.binance.orders import ClientIds, list_states, order_state
from adapters.binance.rest import BinanceRest
from adapters.binance.rules import Conformance, conformed_params, rules_from_exchange_info
from adapters.binance.user_stream import Resubscribed, UserStream
from tradeloop.broker.instruments import InstrumentRules
from tradeloop.errors import (
    ConfigError,
    OutcomeUnknownError,
    VenueProtocolError,
)
from tradeloop.events import OrderStatus, OrderType
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, VenueSnapshot

__all__ = ["BinanceClient"]

_MS = 1_000_000


class BinanceClient:
    """One Binance spot account, trading ``settings.symbols`` against ``quote_asset``."""

    def __init__(self, settings: BinanceSettings) -> None:
        self.settings = settings
        key, secret = settings.require_credentials()
        self.rest = BinanceRest(settings, key, secret)
        self.user_stream = UserStream(settings, self.rest, key, secret)
        self.ids = ClientIds()
        self.rules: dict[str, InstrumentRules] = {}
        self.dust: dict[str, Decimal] = {}  # per symbol: quantity left by rounding to the step
        self.fees_in_other_assets: dict[str, float] = {}  # per fee asset: the total paid
        self.fees_in_other_assets_value = 0.0  # their worth in the quote asset when booked
        self.closed_at_venue: dict[str, OrderStatus] = {}  # stream: orders closed without fill
        self._fee_prices: dict[str, tuple[float, float | None]] = {}  # asset → (when, price)
        self._order_ids: dict[tuple[str, int], str] = {}  # (symbol, orderId) → our cid
        self._log = structlog.get_logger().bind(venue="binance", component="client")

    def __repr__(self) -> str:
        return f"BinanceClient(rest_url={self.settings.rest_url!r}, key=***)"

    async def start(self) -> None:
        await self.rest.start()

    async def close(self) -> None:
        await self.rest.close()

    # ------------------------------------------------------------ instrument rules

    async def instruments(self, asset_ids: Sequence[str]) -> dict[str, InstrumentRules]:
        """The symbols' trading rules, fetched now (GET /api/v3/exchangeInfo?symbols=[...])."""
        symbols = list(dict.fromkeys(asset_ids))
        params = {"symbols": orjson.dumps(symbols).decode()}
        what = f"binance exchangeInfo {','.join(symbols)}"
        info = await self.rest.call("GET", "/api/v3/exchangeInfo", params, what=what, signed=False)
        fresh = rules_from_exchange_info(info, symbols)
        self.rules.update(fresh)
        self._log.info("instrument_rules_loaded", symbols=symbols)
        return fresh

    async def _rules(self, symbol: str) -> InstrumentRules:
        rules = self.rules.get(symbol)
        if rules is None:
            rules = (await self.instruments([symbol]))[symbol]
        return rules

    # ------------------------------------------------------------ orders

    native_order_classes = frozenset(LIST_PATHS)  # oco, bracket (otoco), oto (``order_lists``)

    def takes_order_class(self, order: VenueOrder) -> bool:
        """Binance has a form for this group (a bracket or OTO needs a limit entry)."""
        return takes(order)

    async def submit(self, order: VenueOrder) -> VenueOrderState:
        venue_id = self.ids.to_venue(order.client_order_id)
        rules = await self._rules(order.asset_id)
        if order.order_class != "simple":
            return await self._submit_list(order, venue_id, rules)
        if order.order_type is OrderType.TRAILING_STOP:
            conformed = Conformance(trailing_params(order, venue_id, rules), Decimal(0))
        else:
            conformed = conformed_params(order, venue_id, rules)
        params = conformed.params
        what = (
            f"binance submit {order.client_order_id} {params['side']} {params['quantity']} "
            f"{order.asset_id}"
        )
        if conformed.dust:
            self.dust[order.asset_id] = conformed.dust
            self._log.info(
                "quantity_rounded_to_step",
                client_order_id=order.client_order_id,
                asked=repr(order.qty),
                sent=params["quantity"],
                dust=str(conformed.dust),
            )
        try:
            payload = await self.rest.call(
                "POST", "/api/v3/order", params, what=what, request="submit"
            )
        except FilterFailureError:  # the venue's rules may have changed: fetch them again
            self.rules.pop(order.asset_id, None)
            raise
        try:
            state = order_state(payload, self.ids, sent=params)
        except VenueProtocolError as err:
            # accepted (HTTP 200) but unreadable: it exists in some state we cannot tell
            raise OutcomeUnknownError(f"{what}: accepted, answer unreadable ({err})") from err
        self._remember(state)
        self._log.info(
            "order_submitted",
            client_order_id=order.client_order_id,
            venue_order_id=state.venue_order_id,
            status=str(state.status),
        )
        return state

    async def _submit_list(
        self, order: VenueOrder, venue_id: str, rules: InstrumentRules
    ) -> VenueOrderState:
        """An order list in one request; the state of its first order (ours: the head)."""
        path, params = list_params(order, self.ids, rules)
        what = (
            f"binance order list {order.list_client_order_id} {order.order_class} {order.asset_id}"
        )
        try:
            payload = await self.rest.call("POST", path, params, what=what, request="submit")
        except FilterFailureError:
            self.rules.pop(order.asset_id, None)
            raise
        try:
            states = list_states(payload, self.ids, order)
        except VenueProtocolError as err:
            raise OutcomeUnknownError(f"{what}: accepted, answer unreadable ({err})") from err
        for state in states:
            self._remember(state)
        head = next((s for s in states if s.client_order_id == order.client_order_id), None)
        if head is None:
            raise OutcomeUnknownError(f"{what}: accepted, but {venue_id} is not among its orders")
        self._log.info(
            "order_list_submitted",
            client_order_id=order.client_order_id,
            order_class=order.order_class,
            orders=[s.client_order_id for s in states],
        )
        return head

    async def cancel(self, client_order_id: str, asset_id: str) -> None:
        params = {"symbol": asset_id, "origClientOrderId": self.ids.to_venue(client_order_id)}
        what = f"binance cancel {client_order_id} {asset_id}"
        await self.rest.call("DELETE", "/api/v3/order", params, what=what, request="cancel")
        self._log.info("order_cancel_sent", client_order_id=client_order_id)

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None:
        """The venue's view of one order by client order id; None if Binance has no such
        order now (-2013: it may still appear, the docs say; the caller decides when to stop)."""
        params = {"symbol": asset_id, "origClientOrderId": self.ids.to_venue(client_order_id)}
        what = f"binance order {client_order_id} {asset_id}"
        try:
            payload = await self.rest.call("GET", "/api/v3/order", params, what=what,
                                           request="lookup")  # fmt: skip
        except UnknownOrderError:
            return None
        state = order_state(payload, self.ids)
        self._remember(state)
        return state

    async def snapshot(self) -> VenueSnapshot:
        account = await self.rest.call("GET", "/api/v3/account", {}, what="binance account")
        open_orders: list[Any] = []
        for symbol in self.settings.symbols:
            what = f"binance openOrders {symbol}"
            rows = await self.rest.call("GET", "/api/v3/openOrders", {"symbol": symbol}, what=what)
            if not isinstance(rows, list):
                raise VenueProtocolError(f"binance openOrders {symbol}: not a list: {rows!r}")
            open_orders += rows
        snapshot = snapshot_from(
            account, open_orders, self.settings.symbols, self.settings.quote_asset, self.ids
        )
        for state in snapshot.open_orders:
            self._remember(state)
        return snapshot

    # ------------------------------------------------------------ fills

    async def executions(self) -> AsyncIterator[Execution]:
        """Fills from one user data stream subscription; when an earlier one ended, first the
        fills of the gap over REST (duplicates are the broker's to drop, by trade id). It
        ends only by raising (``user_stream``); the daemon's supervisor calls it again."""
        async for event in self.user_stream.events():
            if isinstance(event, Resubscribed):
                for execution in await self.recent_executions(event.since_ms * _MS):
                    yield execution
                continue
            fill = await self._from_report(event)
            if fill is not None:
                yield fill

    async def _from_report(self, event: dict[str, Any]) -> Execution | None:
        symbol = event.get("s")
        if not isinstance(symbol, str) or symbol not in self.settings.symbols:
            return None
        try:
            update = order_update_from_report(event, self.ids)
            if update is not None:
                self.closed_at_venue[update.client_order_id] = update.status
                self._log.info(
                    "order_closed_at_venue",
                    client_order_id=update.client_order_id,
                    status=update.status.value,
                    filled_qty=update.filled_qty,
                    reason=update.reason,
                )
                return None
            price = await self._fee_price(event.get("N"), symbol)
            base = self.settings.base_asset(symbol)
            trade = trade_from_report(event, self.ids, self.settings.quote_asset, base, price)
        except VenueProtocolError as err:
            self._log.warning("execution_report_skipped", reason=str(err))
            return None
        return None if trade is None else self._booked(trade)

    async def recent_executions(self, since_ns: int) -> list[Execution]:
        """Fills from ``since_ns`` on (GET /api/v3/myTrades per symbol, paged by trade id)."""
        since_ms = since_ns // _MS
        executions: list[Execution] = []
        for symbol in self.settings.symbols:
            rows = await self._my_trades(symbol, since_ms)
            await self._learn_client_ids(symbol, rows)
            base = self.settings.base_asset(symbol)
            for row in rows:
                order_id = row.get("orderId")
                cid = self._order_ids.get((symbol, order_id)) if type(order_id) is int else None
                if cid is None:
                    raise VenueProtocolError(
                        f"binance myTrades {symbol}#{row.get('id')}: order {order_id} "
                        "has no client order id in allOrders"
                    )
                price = await self._fee_price(row.get("commissionAsset"), symbol)
                trade = trade_from_row(row, cid, self.settings.quote_asset, base, price)
                executions.append(self._booked(trade))
        executions.sort(key=lambda e: e.ts_ns)
        return executions

    def _booked(self, trade: Trade) -> Execution:
        fee, symbol = trade.fee, trade.execution.asset_id
        if fee.asset not in (self.settings.quote_asset, self.settings.base_asset(symbol)):
            self.fees_in_other_assets[fee.asset] = (
                self.fees_in_other_assets.get(fee.asset, 0.0) + fee.amount
            )
            self.fees_in_other_assets_value += fee.quote_value or 0.0
            self._log.info(
                "fee_in_other_asset",
                trade_id=trade.execution.trade_id,
                asset=fee.asset,
                amount=fee.amount,
                quote_value=fee.quote_value,
                quote_asset=self.settings.quote_asset,
            )
        return trade.execution

    async def _fee_price(self, asset: Any, symbol: str) -> float | None:
        """The quote-asset price of a fee's third asset (GET /api/v3/ticker/price), cached for
        ``fee_price_ttl_s``; None for the quote or base asset, or when the venue has no pair."""
        quote = self.settings.quote_asset
        if not isinstance(asset, str) or asset in (quote, self.settings.base_asset(symbol)):
            return None
        cached = self._fee_prices.get(asset)
        if cached is not None and time.monotonic() - cached[0] < self.settings.fee_price_ttl_s:
            return cached[1]
        pair = f"{asset}{quote}"
        try:
            answer = await self.rest.call(
                "GET", "/api/v3/ticker/price", {"symbol": pair}, what=f"binance ticker {pair}",
                signed=False,
            )  # fmt: skip
            price = float(answer["price"]) if isinstance(answer, dict) else None
        except ConfigError:  # -1121: no such pair here; the fee stays reported in kind
            price = None
        except (KeyError, ValueError):
            price = None
        self._fee_prices[asset] = (time.monotonic(), price)
        return price

    async def _my_trades(self, symbol: str, since_ms: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"symbol": symbol, "startTime": since_ms, "limit": 1000}
        rows: list[dict[str, Any]] = []
        while True:
            what = f"binance myTrades {symbol}"
            page = await self.rest.call("GET", "/api/v3/myTrades", params, what=what)
            if not isinstance(page, list):
                raise VenueProtocolError(f"binance myTrades {symbol}: not a list: {page!r}")
            rows += [r for r in page if isinstance(r, dict) and r.get("time", 0) >= since_ms]
            if len(page) < 1000:
                return rows
            # the next page by trade id (fromId cannot be combined with startTime)
            params = {"symbol": symbol, "fromId": int(page[-1]["id"]) + 1, "limit": 1000}

    async def _learn_client_ids(self, symbol: str, rows: list[dict[str, Any]]) -> None:
        """myTrades rows carry orderId only: look unknown orders up in allOrders."""
        unknown = {
            row["orderId"]
            for row in rows
            if type(row.get("orderId")) is int and (symbol, row["orderId"]) not in self._order_ids
        }
        if not unknown:
            return
        params = {"symbol": symbol, "orderId": min(unknown), "limit": 1000}
        what = f"binance allOrders {symbol}"
        orders = await self.rest.call("GET", "/api/v3/allOrders", params, what=what)
        if not isinstance(orders, list):
            raise VenueProtocolError(f"binance allOrders {symbol}: not a list: {orders!r}")
        for payload in orders:
            self._remember(order_state(payload, self.ids))

    def _remember(self, state: VenueOrderState) -> None:
        if state.venue_order_id.isdigit():
            key = (state.asset_id, int(state.venue_order_id))
            self._order_ids[key] = state.client_order_id
