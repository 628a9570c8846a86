"""The fake Binance's order lists (OCO, OTO, OTOCO) and its bar matching, on ``FakeExchange``.

Written from https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints
("New Order list - OCO", "- OTO", "- OTOCO") and the -2010 messages of
https://developers.binance.com/docs/binance-spot-api-docs/errors:

- OCO: an *above* and a *below* order of one side and quantity; one of them
  ``LIMIT_MAKER``/``TAKE_PROFIT``/``TAKE_PROFIT_LIMIT``, the other ``STOP_LOSS``/
  ``STOP_LOSS_LIMIT``. A SELL's limit price > last price > its stop; a BUY's limit price <
  last price < its stop; otherwise -2010 "The relationship of the prices for the orders is
  not correct." When one of them trades, the other is EXPIRED.
- OTO / OTOCO: the *working* order is ``LIMIT`` or ``LIMIT_MAKER`` (else -1116 "Invalid
  orderType."); the *pending* order(s) are ``PENDING_NEW`` until the working order is fully
  filled, then go on the book. The pending pair of an OTOCO follows the OCO rules; its
  prices are checked against the working price (the price it will have traded at: our
  reading of "the same rules as the Order list OCO").
- Cancelling one order of a list cancels the whole list.
- ``match(symbol, kline)``: the clock's closed bar against the book (limit: its price or
  the open if the bar opens through it; stop: its stop or the open); of an OCO pair touched
  on one bar the stop trades (the worse case, as tradeloop's simulator rules). A trailing
  stop (``trailingDelta`` without ``stopPrice``: "Trailing Stop FAQ",
  https://developers.binance.com/docs/binance-spot-api-docs/faqs/trailing-stop-faq) sets
  its stop ``trailingDelta`` bps from the first bar's high (a SELL; a BUY's from its low),
  then trades when a bar reaches it, else moves it with the bar's high (low).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.adapters.binance.fake_exchange import FakeExchange, Refusal
from tests.adapters.binance.recorded import payload

__all__ = ["OrderLists"]

_ON_BOOK = ("NEW", "PARTIALLY_FILLED")
_LIMITS = ("LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
_RELATION = "The relationship of the prices for the orders is not correct."


class OrderLists:
    """The order lists of one ``FakeExchange`` (it calls ``after_trade`` on every trade)."""

    def __init__(self, exchange: FakeExchange) -> None:
        self.exchange = exchange
        exchange.after_trade = self.after_trade
        self.lists: dict[int, dict[str, Any]] = {}  # list id → kind, working, pair
        self._of: dict[tuple[str, str], int] = {}  # order → its list id
        self._next_list_id = 100

    # ------------------------------------------------------------ placing

    def place_oco(self, p: dict[str, str]) -> dict[str, Any]:
        """POST /api/v3/orderList/oco."""
        above, below = (
            self._leg(p, "above", p.get("side", "")),
            self._leg(p, "below", p.get("side", "")),
        )
        last = self.exchange.prices.get(p.get("symbol", ""), Decimal(0))
        self._check_pair(p.get("side", ""), above, below, last)
        return self._place("OCO", p, None, [above, below])

    def place_oto(self, p: dict[str, str], *, pair: bool) -> dict[str, Any]:
        """POST /api/v3/orderList/oto (one pending order) or /otoco (a pending pair)."""
        if p.get("workingType") not in ("LIMIT", "LIMIT_MAKER"):
            raise Refusal(400, -1116, "Invalid orderType.")
        working = {
            "symbol": p.get("symbol", ""),
            "side": p.get("workingSide", ""),
            "type": p["workingType"],
            "quantity": p.get("workingQuantity", ""),
            "price": p.get("workingPrice", ""),
            "newClientOrderId": p.get("workingClientOrderId", ""),
        }
        if p["workingType"] == "LIMIT":
            working["timeInForce"] = p.get("workingTimeInForce", "")
        side = p.get("pendingSide", "")
        if pair:
            legs = [self._leg(p, "pendingAbove", side), self._leg(p, "pendingBelow", side)]
            self._check_pair(side, legs[0], legs[1], Decimal(working["price"] or 0))
        else:
            legs = [self._leg(p, "pending", side)]
        return self._place("OTO", p, working, legs)

    def _leg(self, p: dict[str, str], prefix: str, side: str) -> dict[str, str]:
        qty = p.get("pendingQuantity" if prefix.startswith("pending") else "quantity", "")
        leg = {"symbol": p.get("symbol", ""), "side": side, "quantity": qty}
        for name, key in (
            ("type", "Type"),
            ("price", "Price"),
            ("stopPrice", "StopPrice"),
            ("timeInForce", "TimeInForce"),
            ("trailingDelta", "TrailingDelta"),
            ("newClientOrderId", "ClientOrderId"),
        ):
            if f"{prefix}{key}" in p:
                leg[name] = p[f"{prefix}{key}"]
        return leg

    def _check_pair(
        self, side: str, above: dict[str, str], below: dict[str, str], last: Decimal
    ) -> None:
        kinds = (above.get("type"), below.get("type"))
        if side == "SELL":
            limit, stop, ok_kinds = above, below, kinds[0] in _LIMITS and kinds[1] in _STOPS
        else:
            limit, stop, ok_kinds = below, above, kinds[1] in _LIMITS and kinds[0] in _STOPS
        if not ok_kinds:
            raise Refusal(400, -1116, "Invalid orderType.")
        limit_price = Decimal(limit.get("price") or limit.get("stopPrice") or 0)
        stop_price = Decimal(stop.get("stopPrice") or 0)
        if side == "SELL" and not limit_price > last > stop_price:
            raise Refusal(400, -2010, _RELATION)
        if side == "BUY" and not limit_price < last < stop_price:
            raise Refusal(400, -2010, _RELATION)

    def _place(
        self,
        kind: str,
        p: dict[str, str],
        working: dict[str, str] | None,
        legs: list[dict[str, str]],
    ) -> dict[str, Any]:
        """Check every order with the exchange's rules (test placement), then place them."""
        exchange = self.exchange
        pending = working is not None
        if working is not None:
            exchange.place(working, test=True)
        for leg in legs:
            exchange.place(leg, test=True, check_balance=not pending)
        self._next_list_id += 1
        list_id = self._next_list_id
        placed: list[dict[str, Any]] = []
        if working is not None:
            placed.append(self._create(working, list_id, "NEW", lock=True))
        for n, leg in enumerate(legs):
            status = "PENDING_NEW" if pending else "NEW"
            placed.append(self._create(leg, list_id, status, lock=n == 0))
        keys = [(o["symbol"], o["clientOrderId"]) for o in placed]
        self.lists[list_id] = {
            "kind": kind,
            "working": keys[0] if working is not None else None,
            "pair": keys[1:] if working is not None else keys,
        }
        for key in keys:
            self._of[key] = list_id
        answer = payload("http_post_order_list_oco.json")
        answer.update(
            orderListId=list_id,
            contingencyType=kind,
            listClientOrderId=p.get("listClientOrderId", f"list{list_id}"),
            transactionTime=exchange.clock_ms(),
            symbol=p.get("symbol"),
            orders=[{k: o[k] for k in ("symbol", "orderId", "clientOrderId")} for o in placed],
            orderReports=[_report(o) for o in placed],
        )
        return answer

    def _create(
        self, p: dict[str, str], list_id: int, status: str, *, lock: bool
    ) -> dict[str, Any]:
        exchange = self.exchange
        qty = Decimal(p["quantity"])
        price = Decimal(p["price"]) if p.get("price") else None
        stop = Decimal(p["stopPrice"]) if p.get("stopPrice") else None
        return exchange._new_order(
            p, p["newClientOrderId"], qty, price, stop, status=status, lock=lock, list_id=list_id
        )

    # ------------------------------------------------------------ the lists' rules

    def after_trade(self, key: tuple[str, str]) -> None:
        """A working order fully filled places its pending orders; a pair's order that
        traded expires the other."""
        found = self.lists.get(self._of.get(key, -1))
        if found is None:
            return
        orders = self.exchange.orders
        if key == found["working"]:
            if orders[key]["status"] == "FILLED":
                for n, pending in enumerate(found["pair"]):
                    orders[pending]["status"] = "NEW"
                    self.exchange.lock(pending, n == 0)
            return
        for other in found["pair"]:
            if other != key and orders[other]["status"] in _ON_BOOK:
                self._close(other, "EXPIRED")

    def cancelled(self, key: tuple[str, str]) -> None:
        """One order of a list was cancelled: the whole list is."""
        found = self.lists.get(self._of.get(key, -1))
        if found is None:
            return
        for other in [found["working"], *found["pair"]]:
            status = self.exchange.orders[other]["status"] if other is not None else ""
            if other != key and status in (*_ON_BOOK, "PENDING_NEW"):
                self._close(other, "CANCELED")

    def _close(self, key: tuple[str, str], status: str) -> None:
        order = self.exchange.orders[key]
        was_on_book = order["status"] in _ON_BOOK
        order["status"] = status
        if was_on_book:
            self.exchange._release(key)
        self.exchange._report(order, status)

    # ------------------------------------------------------------ matching

    def match(self, symbol: str, kline: dict[str, Any]) -> int:
        """Trade the resting orders of ``symbol`` that the closed ``kline`` reaches."""
        bar = {k: Decimal(kline[k]) for k in ("o", "h", "l")}
        resting = [
            o
            for (s, _), o in self.exchange.orders.items()
            if s == symbol and o["status"] in _ON_BOOK and o["type"] != "MARKET"
        ]
        resting.sort(key=lambda o: o["type"] not in _STOPS)  # stops first: the worse case
        traded = 0
        for order in resting:
            if order["status"] not in _ON_BOOK:
                continue  # its pair traded on this bar
            price = _touched(order, bar)
            if price is None:
                if "trailingDelta" in order:
                    _trail(order, bar)
                continue
            left = Decimal(order["origQty"]) - Decimal(order["executedQty"])
            self.exchange.fill(order["clientOrderId"], left, price, symbol=symbol)
            traded += 1
        return traded


def _touched(order: dict[str, Any], bar: dict[str, Decimal]) -> Decimal | None:
    sell = order["side"] == "SELL"
    if order["type"] in ("LIMIT", "LIMIT_MAKER"):
        limit = Decimal(order["price"])
        if sell and bar["h"] >= limit:
            return max(limit, bar["o"])
        if not sell and bar["l"] <= limit:
            return min(limit, bar["o"])
        return None
    stop = Decimal(order["stopPrice"])
    if not stop:
        return None  # a trailing stop before its first level: not matched here
    if sell and bar["l"] <= stop:
        return min(stop, bar["o"])
    if not sell and bar["h"] >= stop:
        return max(stop, bar["o"])
    return None


def _trail(order: dict[str, Any], bar: dict[str, Decimal]) -> None:
    """Move a trailing stop with the best price since it was placed (to the tick, 0.01)."""
    sell = order["side"] == "SELL"
    best = bar["h"] if sell else bar["l"]
    stop = Decimal(order["stopPrice"])
    delta = Decimal(order["trailingDelta"]) / 10_000
    level = (best * (1 - delta) if sell else best * (1 + delta)).quantize(Decimal("0.01"))
    if not stop or (level > stop if sell else level < stop):
        order["stopPrice"] = f"{level:.8f}"


def _report(order: dict[str, Any]) -> dict[str, Any]:
    """An order of the list as ``orderReports`` carries it (RESULT)."""
    keys = payload("http_post_order_list_oco.json")["orderReports"][0]
    out = {k: order.get(k, v) for k, v in keys.items()}
    out["transactTime"] = order["time"]
    return out
