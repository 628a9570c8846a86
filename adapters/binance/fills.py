"""Binance fills, fees and the account, sans I/O: executionReports, myTrades rows and the account
balances → tradeloop's ``Execution`` and ``VenueSnapshot``. Pure: no I/O.

How a fee is booked depends on the asset Binance took it in (``N`` / ``commissionAsset``,
https://developers.binance.com/docs/binance-spot-api-docs/faqs/commission_faq):

- the quote asset (USDT): ``commission`` is the fee; cash pays it, as at the venue;
- the base asset (a buy's BTC): the account received ``qty − fee``, so the book gets that
  quantity and the fee's value at the fill price as commission: position and cash both equal
  the venue's (``(qty − fee) × price + fee × price = qty × price``);
- a third asset (BNB): the venue's quote and base balances do not move; the fee is booked at
  its value in the quote asset (``commission``, from the fee asset's ticker price that the
  client fetches at booking time) with ``commission_asset``/``commission_paid`` saying what
  was really paid, so the core keeps it apart from cash (``tradeloop.venue``'s fee rule:
  reconciliation adds it back, since it never left the quote balance). Without a price the
  value is 0 and the fee is still reported in kind; the client logs it
  (``fee_in_other_asset``) and totals it per asset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.binance.fields import clip, integer, number, text
from adapters.binance.orders import SIDES, STATUSES, ClientIds, order_state
from tradeloop.errors import VenueProtocolError
from tradeloop.events import OrderStatus, Side
from tradeloop.venue import Execution, VenueSnapshot

__all__ = [
    "Fee",
    "OrderUpdate",
    "Trade",
    "order_update_from_report",
    "snapshot_from",
    "trade_from_report",
    "trade_from_row",
]

_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee as Binance took it: ``amount`` of ``asset``, worth ``quote_value`` in the quote
    asset (None when no price was known)."""

    amount: float
    asset: str
    quote_value: float | None


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill as booked (``execution``) and its fee as the venue took it."""

    execution: Execution
    fee: Fee


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An executionReport that is not a fill: the order is now ``status`` at the venue."""

    client_order_id: str
    asset_id: str
    status: OrderStatus
    filled_qty: float
    reason: str  # Binance's execution type (and reject reason)


def trade_from_report(
    event: Any, ids: ClientIds, quote_asset: str, base_asset: str, fee_price: float | None
) -> Trade | None:
    """An ``executionReport`` → one fill (``x == TRADE``), None for other order updates.

    ``fee_price``: the price in the quote asset of the fee's asset ``N`` when that is a third
    asset (BNB), None otherwise or when unknown.
    """
    if not isinstance(event, dict) or event.get("e") != "executionReport":
        return None
    if event.get("x") != "TRADE":
        return None
    where = f"binance executionReport {event.get('c')}"
    symbol = text(event, "s", where)
    side = SIDES.get(event.get("S", ""))
    if side is None:
        raise VenueProtocolError(f"{where}: S is {event.get('S')!r}, not BUY/SELL")
    price = number(event, "L", where)
    fee_amount = number(event, "n", where)
    named = event.get("N")  # null when there was no fee
    asset = named if isinstance(named, str) and named else quote_asset
    qty, commission, fee = _booked(
        number(event, "l", where), price, fee_amount, asset, quote_asset, base_asset, fee_price
    )
    execution = Execution(
        trade_id=f"{symbol}:{integer(event, 't', where)}",
        client_order_id=ids.to_ours(text(event, "c", where)),
        asset_id=symbol,
        side=side,
        qty=qty,
        price=price,
        commission=commission,
        ts_ns=integer(event, "T", where) * _MS,
        order_done=event.get("X") == "FILLED",
        **_elsewhere(fee, quote_asset, base_asset),
    )
    return Trade(execution, fee)


def trade_from_row(
    row: Any,
    client_order_id: str,
    quote_asset: str,
    base_asset: str,
    fee_price: float | None,
) -> Trade:
    """A GET /api/v3/myTrades row → one fill (``client_order_id`` from its ``orderId``)."""
    if not isinstance(row, dict):
        raise VenueProtocolError(f"binance myTrades: expected an object, got {clip(row)}")
    where = f"binance myTrades {row.get('symbol')}#{row.get('id')}"
    symbol = text(row, "symbol", where)
    price = number(row, "price", where)
    buyer = row.get("isBuyer")
    if not isinstance(buyer, bool):
        raise VenueProtocolError(f"{where}: isBuyer is {buyer!r}, not a boolean")
    qty, commission, fee = _booked(
        number(row, "qty", where),
        price,
        number(row, "commission", where),
        text(row, "commissionAsset", where),
        quote_asset,
        base_asset,
        fee_price,
    )
    execution = Execution(
        trade_id=f"{symbol}:{integer(row, 'id', where)}",
        client_order_id=client_order_id,
        asset_id=symbol,
        side=Side.BUY if buyer else Side.SELL,
        qty=qty,
        price=price,
        commission=commission,
        ts_ns=integer(row, "time", where) * _MS,
        **_elsewhere(fee, quote_asset, base_asset),
    )
    return Trade(execution, fee)


def _elsewhere(fee: Fee, quote_asset: str, base_asset: str) -> dict[str, Any]:
    """The ``Execution`` fields of a fee paid in a third asset (empty for quote or base)."""
    if fee.asset in (quote_asset, base_asset) or not fee.amount:
        return {}
    return {"commission_asset": fee.asset, "commission_paid": fee.amount}


def _booked(
    qty: float,
    price: float,
    fee: float,
    fee_asset: str,
    quote_asset: str,
    base_asset: str,
    fee_price: float | None,
) -> tuple[float, float, Fee]:
    """(quantity booked, commission booked in the quote asset, the fee) of one trade: the rule
    of the module docstring, in one place."""
    if fee_asset == quote_asset:
        return qty, fee, Fee(fee, fee_asset, fee)
    if fee_asset == base_asset:
        return qty - fee, fee * price, Fee(fee, fee_asset, fee * price)
    value = fee * fee_price if fee_price is not None else None
    return qty, value or 0.0, Fee(fee, fee_asset, value)


_CLOSING = {
    "CANCELED": "cancelled at the venue",
    "EXPIRED": "expired at the venue",
    "REJECTED": "rejected by the venue",
    "TRADE_PREVENTION": "expired by self-trade prevention",
}


def order_update_from_report(event: Any, ids: ClientIds) -> OrderUpdate | None:
    """A non-fill executionReport that closes an order (``x`` CANCELED, EXPIRED, REJECTED,
    TRADE_PREVENTION; ``X`` EXPIRED_IN_MATCH included) → the update; None otherwise."""
    if not isinstance(event, dict) or event.get("e") != "executionReport":
        return None
    kind = event.get("x")
    if kind not in _CLOSING:
        return None
    where = f"binance executionReport {event.get('c')}"
    status = STATUSES.get(event.get("X", ""))
    if status is None:
        raise VenueProtocolError(f"{where}: X is {event.get('X')!r}, not an order status")
    # on a cancel, c is the cancel request's own id and C the order's
    venue_id = event.get("C") if kind == "CANCELED" and event.get("C") else event.get("c")
    if not isinstance(venue_id, str) or not venue_id:
        raise VenueProtocolError(f"{where}: no client order id")
    reason = f"{_CLOSING[kind]} ({kind}/{event.get('X')}"
    reason += f", {event['r']})" if event.get("r") not in (None, "NONE") else ")"
    return OrderUpdate(
        client_order_id=ids.to_ours(venue_id),
        asset_id=text(event, "s", where),
        status=status,
        filled_qty=number(event, "z", where),
        reason=reason,
    )


def snapshot_from(
    account: Any,
    open_orders: Iterable[Any],
    symbols: Iterable[str],
    quote_asset: str,
    ids: ClientIds,
) -> VenueSnapshot:
    """GET /api/v3/account + openOrders → cash (quote free+locked) and base-asset positions."""
    if not isinstance(account, dict) or not isinstance(account.get("balances"), list):
        raise VenueProtocolError(f"binance account: no balances list in {clip(account)}")
    held: dict[str, float] = {}
    for row in account["balances"]:
        asset = text(row, "asset", "binance account balance")
        where = f"binance account balance {asset}"
        held[asset] = number(row, "free", where) + number(row, "locked", where)
    positions = {s: held.get(s[: -len(quote_asset)], 0.0) for s in symbols}
    return VenueSnapshot(
        cash=held.get(quote_asset, 0.0),
        positions=positions,
        # a PENDING_NEW order waits for its list's working order (held in the book too)
        open_orders=[
            order_state(row, ids) for row in open_orders if row.get("status") != "PENDING_NEW"
        ],
    )
