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

- ``submit`` sends the order's exact decimal strings (``qty_text``, ``limit_text``,
  ``stop_text``: already on the venue's step and tick when the venue's instrument rules are
  known; never a float repr such as ``0.30000000000000004``). It returns the venue's view
  of the order, or raises ``OrderRejectedError`` (the venue said no: safe, nothing exists),
  ``DuplicateOrderError`` (refused because the client id exists: it does, look it up) or
  ``OutcomeUnknownError`` (timeout, 5xx, a dropped connection: the order may exist). An
  unknown outcome is resolved by ``order(cid)``, never by submitting again.
- ``order(cid)`` returns None when the venue does not know the client id *now*. Right after
  an unknown submit that is not proof it was never placed (venues document that an order
  can appear later): ``LiveBroker`` keeps looking, with backoff, until
  ``[venue] unknown_deadline_s``, and settles it at once on stream evidence.
- rate limits are honoured inside the client (``RateLimitError`` carries how long to wait);
  it never retries a submit on its own.
- ``executions()`` yields every fill once or more (the live stream: Binance's user-data
  stream, Alpaca's trade_updates), and may yield order updates too (``VenueOrderState``:
  accepted, cancelled, expired, rejected), which settle unknown outcomes; the broker
  de-duplicates fills on ``trade_id`` (the venue's execution id). It ends only by raising
  (a typed ``AdapterError`` naming the frame or the failure, a ``ConfigError`` for keys no
  retry can fix; never a quiet end) and does not reconnect on its own: the daemon's
  supervisor calls it again with backoff, and a stream down past ``restore_deadline_s`` is
  lost (the gate goes to ``on_task_lost``). A new call subscribes afresh; the fills of the
  gap are fetched over REST (``VenueTasks`` does it on every restart; both shipped
  adapters also do it inside the new call, from when the last connection opened).
  ``recent_executions(since_ns)`` fetches the fills from a time on over REST (Binance
  myTrades, Alpaca account activities): what a restart or a drop missed.
- ``start()`` connects what needs connecting (time offset, the executions stream);
  ``close()`` releases it.

Order kinds and groups (all optional: a plain order leaves every new field at its default,
so an adapter that ignores them keeps working for plain orders):

- a trailing stop has ``order_type=TRAILING_STOP`` and ``trail_amount`` or ``trail_percent``
  (a fraction: 0.03 is 3 %); a good-till-date order ``tif=GTD`` and ``expire_at_ns``. A
  client that cannot send one raises ``OrderRejectedError`` saying so (never sends a plain
  order in its place). Both shipped adapters send trailing stops natively (Binance: by
  percentage only) and refuse a GTD date; both declare ``native_order_classes`` (their
  READMEs have the table). The venues' wire forms are below.
- a client may declare ``native_order_classes`` (a set of ``"bracket"``, ``"oco"``,
  ``"oto"``). For those, ``LiveBroker`` sends a whole group as ONE ``VenueOrder`` with
  ``order_class`` set: the parent's fields (an OCO: its first leg's), ``take_profit_limit``,
  ``stop_loss_stop`` (and ``stop_loss_limit`` for a stop-limit stop leg), and
  ``leg_client_order_ids`` (stop leg first, then target) plus ``list_client_order_id``;
  the venue then triggers and cancels the legs itself, and every leg's fill must come back
  as an ``Execution`` under that leg's client order id. A client whose venue has a class
  but not every shape of it may also define ``takes_order_class(order) -> bool`` (Binance:
  a bracket's entry must be a limit); a group it does not take is emulated. A client
  whose venue names the legs itself may define ``remember_group(order)``: after a restart
  ``LiveBroker.restore_live`` hands it every native group the journal holds (the request
  as first sent), so a leg's lookup can still find it. What each venue takes:

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
Optional capabilities, checked with ``isinstance`` (an adapter adopts each on its own):

- ``InstrumentSource``: ``instruments(asset_ids)`` gives each asset's ``InstrumentRules``
  (Binance exchangeInfo filters, Alpaca's asset and tick rules). ``LiveBroker`` fetches them
  at start and every ``[venue] instruments_refresh_s``, and conforms every order to them
  before it is journaled and sent.
- ``AccountFeeSource``: ``fees(since_ns)`` gives the account's fees that belong to no fill
  (Alpaca's FEE/CFEE regulatory fees) as ``AccountFee``, each with the venue's id and its
  ``amount`` positive for a charge; reconciliation books each once, from the run's first
  start on, so cash agrees with the account.

Fees: ``Execution.commission`` is always in the account's cash currency. A fee taken in
the traded asset arrives as a net ``qty`` plus the fee's value (cash and position both match
the venue's). A fee in a third asset (BNB) is booked at its value too, priced by the adapter
at the venue (a ticker price at booking time; 0 when the venue has no price for it);
``commission_asset`` and ``commission_paid`` say what was really paid, and reconciliation
adds those values back before comparing cash (they never left the cash balance: they left
the BNB one). Only a third-asset fee sets them (Binance's ``fills``, the one place).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from tradeloop.broker.instruments import InstrumentRules, decimal_of, decimal_text
from tradeloop.errors import ConfigError
from tradeloop.events import Message, OrderStatus, OrderType, Side, TimeInForce

__all__ = [
    "AccountFee",
    "AccountFeeSource",
    "Execution",
    "InstrumentSource",
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
    """An order as sent: ``client_order_id`` is deterministic and journaled before sending.

    ``qty_text``, ``limit_text`` and ``stop_text`` are the exact decimal strings to put on
    the wire; left empty, they are derived from the floats (their 15 significant digits).
    """

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
    qty_text: str = ""
    limit_text: str | None = None
    stop_text: str | None = None

    def exit_leg_ids(self) -> tuple[str, str]:
        """A group's (stop leg's, target's) client order ids; "" for an exit it has not
        (``leg_client_order_ids`` lists the stop first, then the target)."""
        ids = list(self.leg_client_order_ids)
        stop = ids.pop(0) if self.stop_loss_stop is not None and ids else ""
        target = ids.pop(0) if self.take_profit_limit is not None and ids else ""
        return stop, target

    def __post_init__(self) -> None:
        if not self.qty_text:
            object.__setattr__(self, "qty_text", decimal_text(decimal_of(self.qty)))
        for name, value in (("limit_text", self.limit_price), ("stop_text", self.stop_price)):
            if getattr(self, name) is None and value is not None:
                object.__setattr__(self, name, decimal_text(decimal_of(value)))


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
    ``commission`` is the fee's value in the account's cash currency. ``commission_asset``
    names the asset the fee was paid in ONLY when that is a third asset (BNB for a BTCUSDT
    trade), with ``commission_paid`` in its units; it stays "" for a fee out of the cash
    balance or out of the traded quantity (both already match the venue's balances).
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
    commission_asset: str = ""
    commission_paid: float = 0.0


@dataclass(frozen=True, slots=True)
class AccountFee:
    """A fee charged to the account outside any fill (``fee_id`` is unique per venue);
    ``amount`` is in the cash currency, positive for a charge (a refund is negative)."""

    fee_id: str
    amount: float
    ts_ns: int
    description: str = ""


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

    def executions(self) -> AsyncIterator[Execution | VenueOrderState]: ...

    async def recent_executions(self, since_ns: int) -> list[Execution]: ...


@runtime_checkable
class InstrumentSource(Protocol):
    """Optional: a client that knows the venue's instrument rules (see the module rules)."""

    async def instruments(self, asset_ids: Sequence[str]) -> dict[str, InstrumentRules]: ...


@runtime_checkable
class AccountFeeSource(Protocol):
    """Optional: a client that reports account fees outside fills (see the module rules)."""

    async def fees(self, since_ns: int) -> list[AccountFee]: ...


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
