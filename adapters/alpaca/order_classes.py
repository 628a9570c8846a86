"""Alpaca's order classes and trailing stops on the wire (``POST /v2/orders``:
https://docs.alpaca.markets/reference/postorder, https://docs.alpaca.markets/docs/orders-at-alpaca).
Pure: no I/O, no clock.

- A trailing stop is ``type=trailing_stop`` with ``trail_percent`` (in percent: 100 × our
  fraction) or ``trail_price`` (our ``trail_amount``), and no stop price: the venue keeps
  the high-water mark and moves the stop itself.
- A group (``VenueOrder.order_class``) goes as one order:

  - ``bracket``: the entry's own fields, ``take_profit.limit_price`` and
    ``stop_loss.stop_price`` (with ``stop_loss.limit_price`` for a stop-limit stop);
  - ``oto``: the parent's fields and the one exit its child is;
  - ``oco``: ``type=limit`` with both exits. Alpaca's order is the take-profit limit and its
    one leg the stop, so it carries the target's client order id; there is no top-level
    limit price (the docs' OCO example has none).

- Alpaca names the legs itself (their ``client_order_id`` is its own): ``LegMap`` maps each
  to our leg's client order id by its type (a ``limit`` leg is the target, a ``stop`` or
  ``stop_limit`` leg the stop), from the ``legs`` of the order in the submit's response, in
  lookups and in trade_updates, so that every leg's fill comes back under our id.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

from adapters.alpaca.schemas import OrderRequestJSON, StopLossJSON
from tradeloop.broker.instruments import (
    InstrumentRules,
    Refused,
    conform,
    decimal_of,
    decimal_text,
)
from tradeloop.errors import OrderError
from tradeloop.events import OrderType, Side
from tradeloop.venue import VenueOrder

__all__ = ["CLASSES", "LegMap", "add_order_class", "add_trail"]

CLASSES = frozenset({"bracket", "oco", "oto"})
_STOP_TYPES = ("stop", "stop_limit")
_CLASS_NAMES: dict[str, Literal["bracket", "oco", "oto"]] = {
    "bracket": "bracket",
    "oco": "oco",
    "oto": "oto",
}


def add_trail(order: VenueOrder, body: OrderRequestJSON) -> None:
    """Make ``body`` a trailing stop (``OrderError`` when neither trail is given)."""
    where = f"order {order.client_order_id} ({order.asset_id})"
    body["type"] = "trailing_stop"
    body.pop("stop_price", None)
    body.pop("limit_price", None)
    if order.trail_percent is not None and order.trail_amount is None:
        body["trail_percent"] = _text(order.trail_percent * 100.0)
    elif order.trail_amount is not None and order.trail_percent is None:
        body["trail_price"] = _text(order.trail_amount)
    else:
        raise OrderError(f"{where}: a trailing stop takes trail_percent or trail_amount, one")


def add_order_class(order: VenueOrder, rules: InstrumentRules, body: OrderRequestJSON) -> None:
    """Write ``order``'s class and exit legs into ``body`` (conformed to ``rules``)."""
    kind = order.order_class
    where = f"order {order.client_order_id} ({order.asset_id})"
    if kind not in CLASSES:
        raise OrderError(f"{where}: Alpaca has no order class {kind!r}")
    exit_side = order.side if kind == "oco" else _other(order.side)
    if order.take_profit_limit is not None:
        target = _price(rules, exit_side, OrderType.LIMIT, order, order.take_profit_limit, None)
        body["take_profit"] = {"limit_price": target[0]}
    if order.stop_loss_stop is not None:
        kind_of_stop = OrderType.STOP if order.stop_loss_limit is None else OrderType.STOP_LIMIT
        limit, stop = _price(
            rules, exit_side, kind_of_stop, order, order.stop_loss_limit, order.stop_loss_stop
        )
        leg: StopLossJSON = {"stop_price": stop}
        if limit:
            leg["limit_price"] = limit
        body["stop_loss"] = leg
    legs = ("take_profit" in body) + ("stop_loss" in body)
    if legs != (1 if kind == "oto" else 2):
        wanted = "one exit" if kind == "oto" else "a take-profit and a stop-loss"
        raise OrderError(f"{where}: an Alpaca {kind} order needs {wanted}")
    body["order_class"] = _CLASS_NAMES[kind]
    if kind == "oco":
        body["type"] = "limit"
        body.pop("limit_price", None)
        body.pop("stop_price", None)


def _price(
    rules: InstrumentRules,
    side: Side,
    kind: OrderType,
    order: VenueOrder,
    limit: float | None,
    stop: float | None,
) -> tuple[str, str]:
    conformed = conform(rules, side, kind, order.qty, limit, stop, order.tif, None)
    if isinstance(conformed, Refused):
        raise OrderError(f"order {order.client_order_id} ({order.asset_id}) exit: {conformed}")
    as_text = (
        "" if value is None else decimal_text(value)
        for value in (conformed.limit_price, conformed.stop_price)
    )
    return next(as_text), next(as_text)


class LegMap:
    """Alpaca's leg ids ⇄ ours, for the groups this client sent (see the module rules).

    ``ours`` is the client's venue client id → our client id table (shared: every decoder
    reads it); ``venue_ids`` the other way, for lookups and cancels of a leg."""

    def __init__(self, ours: MutableMapping[str, str]) -> None:
        self.ours = ours
        self.venue_ids: dict[str, str] = {}
        self._expected: dict[str, tuple[str, str]] = {}  # venue cid → (stop cid, target cid)
        self._parent: dict[str, str] = {}  # our leg id → the venue cid of the order naming it

    def expect(self, order: VenueOrder, venue_cid: str) -> None:
        """``order`` (a group) goes out as ``venue_cid`` (or went, before a restart): its
        legs are to be named."""
        stop_cid, target_cid = order.exit_leg_ids()
        self._expected[venue_cid] = (stop_cid, target_cid)
        # Alpaca's order is our target for an OCO (our head may be the stop), else our head
        parent = target_cid if order.order_class == "oco" else order.client_order_id
        self.ours[venue_cid] = parent
        for leg in (stop_cid, target_cid):
            if leg and leg != parent:
                self._parent[leg] = venue_cid
        if parent != order.client_order_id:
            self.venue_ids[order.client_order_id] = venue_cid  # until its leg is named

    def learn(self, raw: Mapping[str, Any]) -> None:
        """Name the legs of an Alpaca order (a response, a lookup, a trade update)."""
        expected = self._expected.get(str(raw.get("client_order_id")))
        if expected is None:
            return
        stop_cid, target_cid = expected
        for leg in raw.get("legs") or ():
            kind = str(leg.get("type") or leg.get("order_type"))
            ours = stop_cid if kind in _STOP_TYPES else target_cid if kind == "limit" else ""
            venue_cid = str(leg.get("client_order_id") or "")
            if ours and venue_cid:
                self.ours[venue_cid] = ours
                self.venue_ids[ours] = venue_cid
                self._parent.pop(ours, None)

    def unnamed_parent(self, client_order_id: str) -> str | None:
        """For a leg not named yet: the venue cid of the order whose ``legs`` will name it."""
        return self._parent.get(client_order_id)

    def venue_cid(self, client_order_id: str, default: str) -> str:
        """The Alpaca client id to look ``client_order_id`` up by."""
        return self.venue_ids.get(client_order_id, default)


def _other(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def _text(value: float) -> str:
    return decimal_text(decimal_of(value))
