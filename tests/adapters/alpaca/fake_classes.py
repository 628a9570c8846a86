"""The fake Alpaca's order classes and trailing stops, as the docs describe them
(https://docs.alpaca.markets/docs/orders-at-alpaca: "Bracket Orders", "OCO Orders",
"OTO Orders", "Trailing Stop Orders").

- A bracket's exits, and an OTO's one, are legs of the entry, created ``held`` with Alpaca's
  own ids and client ids, listed in the entry's ``legs``; they become ``new`` when the
  entry is filled, and when one of a bracket's exits fills the other is ``canceled``.
- An OCO is a ``limit`` order (the take-profit) with the stop as its one leg, both working
  at once; when one fills the other is canceled.
- Cancelling an order cancels its working and held legs.
- ``match(symbol, bar)``: working limit, stop and trailing-stop orders against a bar (the
  clocked ``Market`` calls it): a limit fills at its price (or the open, if the bar opens
  through it), a stop at its stop (or the open); of a group's two exits touched on one bar
  the stop fills (the worse case, as tradeloop's simulator rules). A trailing stop moves
  its stop with the high-water mark (``hwm``) after each bar.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

__all__ = ["FakeOrderClasses"]

_WORKING = ("new", "accepted", "partially_filled")
_OTHER_SIDE = {"buy": "sell", "sell": "buy"}


class FakeOrderClasses:
    """Mixin of ``FakeAlpaca``: legs, their triggers and cancels, and bar matching."""

    orders: dict[str, dict[str, Any]]
    leg_parent: dict[str, str]  # leg id → its parent's id
    send_updates: Any
    fill: Any
    _send_trade: Any

    def build_legs(self, order: dict[str, Any], body: dict[str, Any]) -> None:
        """Give a new order of a class (bracket, oco, oto) its legs; a trailing stop its
        first stop and high-water mark."""
        kind = body.get("order_class") or "simple"
        order["order_class"] = kind
        for name in ("trail_percent", "trail_price"):
            order[name] = _wire(body.get(name))
        if kind == "simple":
            return
        take_profit, stop_loss = body.get("take_profit"), body.get("stop_loss")
        if kind == "oco":  # the order is the take-profit limit; its leg the stop
            order.update(limit_price=_wire(take_profit["limit_price"]))
        legs = []
        if take_profit and kind != "oco":
            legs.append(self._leg(order, "limit", limit_price=take_profit["limit_price"]))
        if stop_loss:
            kind_of_stop = "stop_limit" if stop_loss.get("limit_price") else "stop"
            legs.append(
                self._leg(
                    order,
                    kind_of_stop,
                    stop_price=stop_loss["stop_price"],
                    limit_price=stop_loss.get("limit_price"),
                )
            )
        order["legs"] = [copy.deepcopy(leg) for leg in legs]

    def _leg(self, parent: dict[str, Any], kind: str, **prices: Any) -> dict[str, Any]:
        leg = copy.deepcopy(parent)
        oco = parent["order_class"] == "oco"
        leg.update(
            id=str(uuid.uuid4()),
            client_order_id=str(uuid.uuid4()),  # Alpaca names the legs itself
            side=parent["side"] if oco else _OTHER_SIDE[parent["side"]],
            type=kind,
            order_type=kind,
            limit_price=_wire(prices.get("limit_price")),
            stop_price=_wire(prices.get("stop_price")),
            status="new" if oco else "held",
            legs=None,
        )
        self.orders[leg["id"]] = leg
        self.leg_parent[leg["id"]] = parent["id"]
        return leg

    def group_of(self, order_id: str) -> list[dict[str, Any]]:
        """The order's group: its parent and the parent's legs (one order: itself)."""
        parent = self.orders[self.leg_parent.get(order_id, order_id)]
        return [parent, *(self.orders[leg["id"]] for leg in parent.get("legs") or ())]

    def _sync(self, order_id: str) -> None:
        parent, *legs = self.group_of(order_id)
        if legs:
            parent["legs"] = [copy.deepcopy(leg) for leg in legs]

    async def report_fill(self, order_id: str, qty: float, price: float) -> None:
        """Fill, send the trade update, then apply the class's rule (activate, cancel)."""
        await self.send_updates(self.fill(order_id, qty, price))
        order = self.orders[order_id]
        parent, *legs = self.group_of(order_id)
        if order["status"] == "filled" and order is parent and parent["order_class"] != "oco":
            for leg in legs:
                if leg["status"] == "held":
                    leg["status"] = "new"
                    await self._send_trade("new", leg)
        elif order["status"] == "filled" and parent["order_class"] in ("bracket", "oco"):
            pair = legs if parent["order_class"] == "bracket" else [parent, *legs]
            for other in pair:
                if other is not order and other["status"] in _WORKING:
                    other["status"] = "canceled"
                    await self._send_trade("canceled", other)
        self._sync(order_id)

    async def cancel_legs(self, order_id: str) -> None:
        """A cancelled order's held and working legs are cancelled with it."""
        for leg in self.orders[order_id].get("legs") or ():
            current = self.orders[leg["id"]]
            if current["status"] in (*_WORKING, "held"):
                current["status"] = "canceled"
                await self._send_trade("canceled", current)
        self._sync(order_id)

    async def match(self, symbol: str, bar: dict[str, Any]) -> int:
        """Fill the working orders of ``symbol`` that ``bar`` reaches; return how many."""
        filled = 0
        working = [
            o
            for o in self.orders.values()
            if o["symbol"] == symbol and o["status"] in _WORKING and o["type"] != "market"
        ]
        working.sort(key=lambda o: o["type"] == "limit")  # stops first: the worse case
        for order in working:
            if order["status"] not in _WORKING:
                continue  # its sibling filled on this bar
            if order["type"] == "trailing_stop" and not order.get("stop_price"):
                _trail(order, bar)  # its first stop, from the first bar it sees
                continue
            price = _touched(order, bar)
            if price is not None:
                left = float(order["qty"]) - float(order["filled_qty"])
                await self.report_fill(order["id"], left, price)
                filled += 1
            elif order["type"] == "trailing_stop":
                _trail(order, bar)
        return filled


def _touched(order: dict[str, Any], bar: dict[str, Any]) -> float | None:
    """The price ``order`` fills at on ``bar``, or None if the bar does not reach it."""
    sell = order["side"] == "sell"
    kind = order["type"]
    if kind == "limit":
        limit = float(order["limit_price"])
        if sell and bar["h"] >= limit:
            return max(limit, bar["o"])
        if not sell and bar["l"] <= limit:
            return min(limit, bar["o"])
        return None
    stop = float(order["stop_price"])
    if sell and bar["l"] <= stop:
        return min(stop, bar["o"])
    if not sell and bar["h"] >= stop:
        return max(stop, bar["o"])
    return None


def _trail(order: dict[str, Any], bar: dict[str, Any]) -> None:
    """Move a trailing stop with the high-water mark (a sell's high, a buy's low)."""
    sell = order["side"] == "sell"
    mark = bar["h"] if sell else bar["l"]
    hwm = float(order["hwm"]) if order.get("hwm") else mark
    hwm = max(hwm, mark) if sell else min(hwm, mark)
    if order.get("trail_percent"):
        offset = hwm * float(order["trail_percent"]) / 100.0
    else:
        offset = float(order["trail_price"])
    order.update(hwm=f"{hwm:.4f}", stop_price=f"{hwm - offset if sell else hwm + offset:.4f}")


def _wire(value: Any) -> str | None:
    return None if value is None else format(float(value), "f").rstrip("0").rstrip(".")
