"""Order groups: OCO (one cancels the other), OTO (one triggers the other) and brackets (an
entry that triggers an OCO pair of exits). Pure: the rules, applied to an ``OrderBook``.

- **OCO**: legs of one quantity, all working. When a leg fills, the others are cancelled
  (``OrderBook.cancel_linked``: at once in a simulation, at the venue live); a partial fill
  resizes them to what is left, so the legs together never fill more than that quantity.
  A strategy cancelling one leg cancels only that leg. A rejected leg cancels the others.
- **OTO**: a parent and children that are ``held`` until it fills. Its first fill activates
  them with the quantity filled so far; each later fill resizes them; a parent that ends
  with nothing filled (cancelled, expired, rejected) cancels them. A child priced
  ``from_fill`` gets its level from the parent's average fill price at activation.
- **bracket**: an OTO whose children (a stop-loss and a take-profit) are an OCO pair. Its
  exits are reduce-only: admitted without a shorting or cash check, filled only up to the
  position, so a bracket never leaves a position beyond its entry.

Which leg a bar fills when it reaches several is the matching's rule (``SimulationBroker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradeloop.broker.orders import Order, OrderRequest
from tradeloop.errors import OrderError
from tradeloop.events import OrderStatus, OrderType

if TYPE_CHECKING:
    from tradeloop.broker.book import OrderBook

__all__ = [
    "OrderGroup",
    "after_close",
    "after_fill",
    "order_extras",
    "place_group",
    "restore_extras",
]

_EPS = 1e-9
_HELD, _CANCELLED = OrderStatus.HELD, OrderStatus.CANCELLED
_LIMIT, _STOP = OrderType.LIMIT, OrderType.STOP


@dataclass(slots=True, eq=False)
class OrderGroup:
    """Orders linked by one rule: ``kind`` is ``"oco"``, ``"oto"`` or ``"bracket"``."""

    id: int
    kind: str
    parent: Order | None
    legs: list[Order] = field(default_factory=list)
    oco: bool = False  # the legs cancel each other
    qty: float = 0.0  # the legs' shared quantity (an OCO without a parent)
    matched_ns: int = -1  # when the legs were last matched: once a bar, whichever comes first
    venue_class: str = ""  # live: the venue's native order class carrying the group, if any

    @property
    def orders(self) -> list[Order]:
        """Every order of the group, parent first."""
        return ([self.parent] if self.parent is not None else []) + self.legs


def place_group(
    book: OrderBook, parent: OrderRequest | None, legs: Sequence[OrderRequest], oco: bool
) -> OrderGroup:
    """Place ``legs`` as an OCO (no parent), or ``parent`` with ``legs`` as its held
    children (an OTO; a bracket when the children are an OCO pair)."""
    _check_shape(parent, legs, oco)
    book.n_groups += 1
    kind = "oco" if parent is None else "bracket" if oco else "oto"
    group = OrderGroup(book.n_groups, kind, None, oco=oco, qty=legs[0].qty)
    if parent is not None:
        group.parent = book.place_request(parent, group)
        if group.parent.is_open:
            group.legs = [book.place_request(leg, group, held=True) for leg in legs]
        return group
    for request in legs:
        order = book.place_request(request, group)
        group.legs.append(order)
        if not order.is_open:
            for placed in group.legs[:-1]:
                book.cancel(placed.id, f"OCO leg #{order.id} was rejected: {order.message}")
            break
    return group


def after_fill(book: OrderBook, group: OrderGroup, order: Order) -> None:
    """Apply the group's rule after ``order`` (one of its orders) filled some quantity."""
    if order is group.parent:
        _follow_parent(book, group, order)
        return
    if group.oco:
        total = group.parent.filled_qty if group.parent is not None else group.qty
        left = total - sum(leg.filled_qty for leg in group.legs)
        for sibling in group.legs:
            if sibling is order or not sibling.is_open:
                continue
            if left <= _EPS:
                book.cancel_linked(sibling, f"OCO: #{order.id} filled")
            else:
                sibling.qty = sibling.filled_qty + left


def after_close(book: OrderBook, group: OrderGroup, order: Order) -> None:
    """A parent that ends with nothing filled cancels its held children."""
    if order is not group.parent or order.filled_qty > _EPS:
        return
    for leg in group.legs:
        if leg.status is _HELD:
            leg.status = _CANCELLED
            leg.message = f"parent #{order.id} {order.status.value} unfilled"
            book.tell(leg)


def _follow_parent(book: OrderBook, group: OrderGroup, parent: Order) -> None:
    """Children follow the parent's filled quantity; the first fill activates them."""
    filled = parent.filled_qty
    done = sum(leg.filled_qty for leg in group.legs) if group.oco else 0.0
    for leg in group.legs:
        if leg.status is _HELD:
            leg.qty = filled
            if leg.from_fill is not None:
                level = parent.avg_fill_price * (1.0 + leg.from_fill)
                if leg.order_type is _STOP:
                    leg.stop_price = level
                else:
                    leg.limit_price = level
            book.activate(leg, f"parent #{parent.id} filled")
        elif leg.is_open:
            leg.qty = leg.filled_qty + filled - done if group.oco else filled


def _check_shape(parent: OrderRequest | None, legs: Sequence[OrderRequest], oco: bool) -> None:
    """Raise ``OrderError`` for a group that cannot work."""
    if not legs:
        raise OrderError("an order group needs at least one leg")
    if parent is None and (not oco or len(legs) < 2):
        raise OrderError("an OCO needs two or more legs (an OTO needs a parent)")
    if oco and len({leg.qty for leg in legs}) > 1:
        raise OrderError(
            f"OCO legs share one quantity (one of them fills), got {[leg.qty for leg in legs]}"
        )
    for leg in legs:
        if parent is not None and leg.asset_id != parent.asset_id:
            raise OrderError(
                f"an OTO child trades its parent's asset {parent.asset_id!r}, not {leg.asset_id!r}"
            )
        if leg.from_fill is not None:
            if parent is None:
                raise OrderError("a leg priced from the fill needs a parent to fill")
            if leg.order_type not in (_STOP, _LIMIT):
                raise OrderError(
                    f"a leg priced from the fill is a stop or a limit, not {leg.order_type}"
                )


# -- what a journal keeps of the orders that are more than plain ones -------------------------

_EXTRA_FIELDS = (
    "trail_amount",
    "trail_percent",
    "trail_ref",
    "expire_at_ns",
    "fill_percent",
    "fill_target",
    "reduce_only",
    "from_fill",
)


def order_extras(order: Order) -> dict[str, Any] | None:
    """The options and group links of a special order, as plain values (None if plain)."""
    if not order.special:
        return None
    extras: dict[str, Any] = {name: getattr(order, name) for name in _EXTRA_FIELDS}
    group = order.group
    if group is not None:
        extras["group"] = {
            "id": group.id,
            "kind": group.kind,
            "parent": group.parent.id if group.parent is not None else None,
            "legs": [leg.id for leg in group.legs],
            "oco": group.oco,
            "qty": group.qty,
            "venue_class": group.venue_class,
        }
    return extras


def restore_extras(orders: Sequence[Order], extras: dict[int, dict[str, Any]]) -> None:
    """Give restored ``orders`` (ids from 1, in order) back their options and groups."""
    groups: dict[int, OrderGroup] = {}
    for order_id, values in extras.items():
        order = orders[order_id - 1]
        order.special = True
        for name in _EXTRA_FIELDS:
            setattr(order, name, values.get(name, getattr(order, name)))
        link = values.get("group")
        if link is None:
            continue
        group = groups.get(link["id"])
        if group is None:
            parent = link["parent"]
            group = groups[link["id"]] = OrderGroup(
                link["id"],
                link["kind"],
                orders[parent - 1] if parent is not None else None,
                [orders[leg - 1] for leg in link["legs"]],
                oco=link["oco"],
                qty=link["qty"],
                venue_class=link.get("venue_class", ""),
            )
        order.group = group
