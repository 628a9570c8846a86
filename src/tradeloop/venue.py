"""The seam to a real venue: what an adapter (``adapters/<name>/``) provides, and how the
core finds it. The core never imports an adapter; it looks its name up in the
``tradeloop.venues`` entry-point group (``venue = "binance"`` in the config).

An adapter module exports ``VENUE``, an object with:

- ``name``: ``"binance"``;
- ``feed(settings) -> VenueFeed``: bars (``messages()``, closed bars only) and
  ``history(start_ns, end_ns)`` for gap backfill: the shape ``SupervisedFeed`` wraps;
- ``client(settings) -> VenueClient``: orders, cancels, lookups, the account snapshot and
  the stream of executions.

``settings`` is the ``[venue]`` table of the config (a dict of plain values; the adapter
validates it and reads its secrets from the environment, never from the file).

The rules every client keeps:

- ``submit`` returns the venue's view of the order, or raises ``OrderRejectedError`` (the venue
  said no: safe, nothing exists) or ``OutcomeUnknownError`` (timeout, 5xx, a dropped
  connection: the order may exist). An unknown outcome is resolved by ``order(cid)``, never
  by submitting again.
- rate limits are honoured inside the client (``RateLimitError`` carries how long to wait);
  it never retries a submit on its own.
- ``executions()`` yields every fill once or more (the live stream: Binance's user-data
  stream, Alpaca's trade_updates); the broker de-duplicates on ``trade_id``.
  ``recent_executions(since_ns)`` fetches the fills from a time on over REST (Binance
  myTrades, Alpaca account activities): what a restart missed.
- ``start()`` connects what needs connecting (time offset, the executions stream);
  ``close()`` releases it.

Order kinds and groups (all optional: a plain order leaves every new field at its default,
so an adapter that ignores them keeps working for plain orders):

- a trailing stop has ``order_type=TRAILING_STOP`` and ``trail_amount`` or ``trail_percent``
  (a fraction: 0.03 is 3 %); a good-till-date order ``tif=GTD`` and ``expire_at_ns``. A
  client that cannot send one raises ``OrderRejectedError`` saying so (never sends a plain
  order in its place).
- a client may declare ``native_order_classes`` (a set of ``"bracket"``, ``"oco"``,
  ``"oto"``). For those, ``LiveBroker`` sends a whole group as ONE ``VenueOrder`` with
  ``order_class`` set: the parent's fields (an OCO: its first leg's), ``take_profit_limit``,
  ``stop_loss_stop`` (and ``stop_loss_limit`` for a stop-limit stop leg), and
  ``leg_client_order_ids`` (stop leg first, then target) plus ``list_client_order_id``;
  the venue then triggers and cancels the legs itself, and every leg's fill must come back
  as an ``Execution`` under that leg's client order id. What each adapter sends:

  - Alpaca (``POST /v2/orders``): ``type=trailing_stop`` with ``trail_percent`` (in
    percent: 100 × the fraction) or ``trail_price``; ``order_class=bracket|oco|oto`` with
    ``take_profit.limit_price`` and ``stop_loss.stop_price`` (``stop_loss.limit_price``);
    the legs' ids are the venue's, so the adapter maps them to ``leg_client_order_ids``
    from the order's ``legs`` in the response and in ``trade_updates``. Alpaca has no GTD:
    refuse it.
  - Binance spot: an OCO is ``POST /api/v3/orderList/oco`` (``aboveType``/``belowType``,
    ``abovePrice``, ``belowStopPrice``/``belowPrice``, ``listClientOrderId``,
    ``aboveClientOrderId``/``belowClientOrderId`` from ``leg_client_order_ids``); a
    bracket is ``POST /api/v3/orderList/otoco`` (working order + pending above/below; note
    the pending pair goes out only once the working order is fully filled); a trailing stop
    is a ``STOP_LOSS`` with ``trailingDelta`` in basis points (10,000 × ``trail_percent``;
    ``trail_amount`` is not expressible: refuse it).

  Without native support the runtime emulates the group: it sends the working orders, a
  child when its parent's fill comes in, and a cancel for an OCO sibling when a leg fills.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

from tradeloop.errors import ConfigError
from tradeloop.events import Message, OrderStatus, OrderType, Side, TimeInForce

__all__ = [
    "Execution",
    "Venue",
    "VenueClient",
    "VenueFeed",
    "VenueOrder",
    "VenueOrderState",
    "VenueSnapshot",
    "load_venue",
]


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as sent: ``client_order_id`` is deterministic and journaled before sending."""

    client_order_id: str
    asset_id: str
    side: Side
    qty: float
    order_type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.GTC
    # added for issue 13; the defaults describe a plain order (see the module docstring)
    trail_amount: float | None = None
    trail_percent: float | None = None
    expire_at_ns: int | None = None
    order_class: str = "simple"  # "simple", or a native "bracket" / "oco" / "oto"
    take_profit_limit: float | None = None
    stop_loss_stop: float | None = None
    stop_loss_limit: float | None = None
    leg_client_order_ids: tuple[str, ...] = ()
    list_client_order_id: str = ""


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """The venue's view of one order."""

    client_order_id: str
    venue_order_id: str
    asset_id: str
    side: Side
    qty: float
    status: OrderStatus
    filled_qty: float = 0.0
    avg_fill_price: float = 0.0
    message: str = ""


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill reported by the venue (``trade_id`` is unique per venue).

    ``qty`` is what the account received (net of a fee taken in the traded asset);
    ``order_done`` says the venue considers the order complete after this fill, which a
    fee-net quantity cannot show by itself.
    """

    trade_id: str
    client_order_id: str
    asset_id: str
    side: Side
    qty: float
    price: float
    commission: float
    ts_ns: int
    order_done: bool = False


@dataclass(frozen=True, slots=True)
class VenueSnapshot:
    """The account as the venue sees it: the authority at reconciliation."""

    cash: float
    positions: Mapping[str, float]
    open_orders: list[VenueOrderState] = field(default_factory=list)


class VenueFeed(Protocol):
    def messages(self) -> AsyncIterator[Message]: ...

    async def history(self, start_ns: int, end_ns: int | None) -> list[Message]: ...


class VenueClient(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: VenueOrder) -> VenueOrderState: ...

    async def cancel(self, client_order_id: str, asset_id: str) -> None: ...

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None: ...

    async def snapshot(self) -> VenueSnapshot: ...

    def executions(self) -> AsyncIterator[Execution]: ...

    async def recent_executions(self, since_ns: int) -> list[Execution]: ...


class Venue(Protocol):
    name: str

    def feed(self, settings: Mapping[str, Any]) -> VenueFeed: ...

    def client(self, settings: Mapping[str, Any]) -> VenueClient: ...


def load_venue(name: str) -> Venue:
    """The adapter registered as ``name`` in the ``tradeloop.venues`` entry points."""
    found = {ep.name: ep for ep in entry_points(group="tradeloop.venues")}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ConfigError(f"venue = {name!r}: no such adapter (installed: {known})")
    venue: Venue = found[name].load()
    return venue
