"""How an order, or a whole group, is described to a venue (``tradeloop.venue.VenueOrder``).
Pure: orders in, the request out.

A plain order travels with its own fields (a trailing stop's trail, a GTD's date). A group
goes as one request only where the venue has the class natively (``native_class``): a
bracket as its entry with the two exit levels, an OCO as its first leg with the other's
level, an OTO as its parent with its one child's level; the legs' client order ids travel
with it (stop leg first) so that their fills come back under them. Legs priced from the
fill have no price before it, so such a group is emulated instead.
"""

from __future__ import annotations

from collections.abc import Set

from tradeloop.broker.groups import OrderGroup
from tradeloop.broker.orders import Order
from tradeloop.events import OrderType
from tradeloop.venue import VenueOrder

__all__ = ["group_venue_order", "native_class", "venue_order"]

_STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)


def venue_order(order: Order) -> VenueOrder:
    """A single order as sent (``order_class="simple"``)."""
    return VenueOrder(
        order.client_order_id,
        order.asset_id,
        order.side,
        order.qty,
        order.order_type,
        order.limit_price,
        order.stop_price,
        order.tif,
        trail_amount=order.trail_amount,
        trail_percent=order.trail_percent,
        expire_at_ns=order.expire_at_ns,
    )


def native_class(group: OrderGroup, native: Set[str]) -> str:
    """The venue order class that carries ``group`` whole, or "" to emulate it."""
    if group.kind not in native or any(leg.from_fill is not None for leg in group.legs):
        return ""
    stops = [leg for leg in group.legs if leg.order_type in _STOPS]
    targets = [leg for leg in group.legs if leg.order_type is OrderType.LIMIT]
    if group.kind == "oto":
        return "oto" if len(group.legs) == 1 and (stops or targets) else ""
    return group.kind if len(stops) == 1 and len(targets) == 1 else ""


def group_venue_order(group: OrderGroup, order_class: str) -> VenueOrder:
    """One request for the whole group (see the module docstring)."""
    stops = [leg for leg in group.legs if leg.order_type in _STOPS]
    targets = [leg for leg in group.legs if leg.order_type is OrderType.LIMIT]
    head = group.parent if group.parent is not None else group.legs[0]
    base = venue_order(head)
    legs = [*stops, *targets]
    return VenueOrder(
        base.client_order_id,
        base.asset_id,
        base.side,
        base.qty,
        base.order_type,
        base.limit_price,
        base.stop_price,
        base.tif,
        expire_at_ns=base.expire_at_ns,
        order_class=order_class,
        take_profit_limit=targets[0].limit_price if targets else None,
        stop_loss_stop=stops[0].stop_price if stops else None,
        stop_loss_limit=stops[0].limit_price if stops else None,
        leg_client_order_ids=tuple(leg.client_order_id for leg in legs),
        list_client_order_id=f"{base.client_order_id}-list",
    )
