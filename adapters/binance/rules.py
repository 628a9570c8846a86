"""Binance spot's trading rules: ``GET /api/v3/exchangeInfo`` symbol filters → ``InstrumentRules``,
and an order conformed to them as the exact decimal strings that go on the wire. Pure: no I/O.

Filters read (https://developers.binance.com/docs/binance-spot-api-docs/filters):

- ``PRICE_FILTER``: ``minPrice``/``maxPrice``/``tickSize``; each is disabled when 0.
- ``LOT_SIZE``: ``minQty``/``maxQty``/``stepSize`` for every order's quantity.
- ``MARKET_LOT_SIZE``: the same for MARKET orders (a 0 step means LOT_SIZE's applies).
- ``NOTIONAL``: ``minNotional`` (for MARKET only if ``applyMinToMarket``) and ``maxNotional``.
- ``MIN_NOTIONAL`` (older symbols): ``minNotional``, for MARKET only if ``applyToMarket``.

A quantity rounds toward zero to the step, so a fee-reduced position (0.0099925 BTC at a
0.00001 step) sells 0.00999 and leaves 0.0000025 of dust that no order can sell: the dust stays
in the account's base balance, so the venue's position and the book both show it, and
``conformed_params`` reports it (``dust``) for the client to log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.binance.fields import decimal
from tradeloop.broker.instruments import (
    InstrumentRules,
    Refused,
    conform,
    decimal_of,
    decimal_text,
)
from tradeloop.errors import ConfigError, OrderRejectedError, VenueProtocolError
from tradeloop.events import OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrder

__all__ = ["ORDER_TYPES", "Conformance", "conformed_params", "rules_from_exchange_info"]

ORDER_TYPES = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP_LOSS",  # market once triggered
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
}


def rules_from_exchange_info(payload: Any, symbols: Iterable[str]) -> dict[str, InstrumentRules]:
    """The rules of each of ``symbols`` from an exchangeInfo answer; a missing one is a
    ``ConfigError`` (the config names a symbol the venue does not list)."""
    rows = payload.get("symbols") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise VenueProtocolError("binance exchangeInfo: no symbols list in the answer")
    by_symbol = {row.get("symbol"): row for row in rows if isinstance(row, dict)}
    rules = {}
    for symbol in symbols:
        row = by_symbol.get(symbol)
        if row is None:
            raise ConfigError(
                f"[venue] symbols: {symbol} is not in Binance's exchangeInfo. "
                "Fix: check the symbol's spelling and that it trades on this venue (testnet "
                "lists fewer symbols than production)"
            )
        rules[symbol] = _symbol_rules(symbol, row)
    return rules


def _symbol_rules(symbol: str, row: Mapping[str, Any]) -> InstrumentRules:
    filters = row.get("filters")
    if not isinstance(filters, list):
        raise VenueProtocolError(f"binance exchangeInfo {symbol}: filters is not a list")
    by_type = {f.get("filterType"): f for f in filters if isinstance(f, dict)}
    where = f"binance exchangeInfo {symbol}"
    values: dict[str, Any] = {}
    price = by_type.get("PRICE_FILTER")
    if price is not None:
        tick = _dec(price, "tickSize", f"{where} PRICE_FILTER")
        values["price_ticks"] = ((Decimal(0), tick),) if tick else ()
        values["min_price"] = _dec(price, "minPrice", f"{where} PRICE_FILTER")
        values["max_price"] = _dec(price, "maxPrice", f"{where} PRICE_FILTER")
    for name, prefix in (("LOT_SIZE", ""), ("MARKET_LOT_SIZE", "market_")):
        lot = by_type.get(name)
        if lot is not None:
            values[f"{prefix}qty_step"] = _dec(lot, "stepSize", f"{where} {name}")
            values[f"{prefix}min_qty"] = _dec(lot, "minQty", f"{where} {name}")
            values[f"{prefix}max_qty"] = _dec(lot, "maxQty", f"{where} {name}")
    notional = by_type.get("NOTIONAL")
    older = by_type.get("MIN_NOTIONAL")
    if notional is not None:
        values["min_notional"] = _dec(notional, "minNotional", f"{where} NOTIONAL")
        values["max_notional"] = _dec(notional, "maxNotional", f"{where} NOTIONAL")
        values["min_notional_applies_to_market"] = notional.get("applyMinToMarket") is True
    elif older is not None:
        values["min_notional"] = _dec(older, "minNotional", f"{where} MIN_NOTIONAL")
        values["min_notional_applies_to_market"] = older.get("applyToMarket") is True
    return InstrumentRules(asset_id=symbol, **values)


def _dec(raw: Mapping[str, Any], name: str, where: str) -> Decimal | None:
    """A filter's decimal string; 0 (Binance's "disabled") is None."""
    number = decimal(raw, name, where)
    if number < 0:
        raise VenueProtocolError(f"{where}: {name} is {raw[name]!r}, not a non-negative decimal")
    return number if number else None


@dataclass(frozen=True, slots=True)
class Conformance:
    """POST /api/v3/order params as sent, and what rounding left behind."""

    params: dict[str, str]
    # the asked quantity (read as conform() reads a float: 15 significant digits, so float
    # noise such as 0.1 + 0.2 is no dust) minus the quantity sent; 0 when it was on the step
    dust: Decimal


def conformed_params(
    order: VenueOrder, venue_id: str, rules: InstrumentRules, *, resp_type: str = "RESULT"
) -> Conformance:
    """Our order → POST /api/v3/order params conformed to ``rules`` (exact decimal strings);
    an order that cannot conform is ``OrderRejectedError`` naming the rule, before sending."""
    where = f"binance order {order.client_order_id} ({order.asset_id})"
    if order.order_type not in ORDER_TYPES:
        raise OrderRejectedError(
            f"{where}: this adapter does not send {order.order_type} orders yet (never a plain "
            "order in its place). Fix: use a stop, or a RiskManager trailing exit"
        )
    if order.tif is TimeInForce.GTD:
        raise OrderRejectedError(
            f"{where}: Binance spot has no good-till-date orders in this adapter. Fix: use GTC"
        )
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and order.tif not in (
        TimeInForce.GTC,
    ):
        raise OrderRejectedError(
            f"{where}: time in force {order.tif} does not exist on Binance spot "
            "(crypto trades around the clock): use GTC"
        )
    priced = _PRICED[order.order_type]
    limit = order.limit_price if OrderType.LIMIT in priced else None
    stop = order.stop_price if OrderType.STOP in priced else None
    for name, value, needed in (
        ("limit_price", limit, OrderType.LIMIT in priced),
        ("stop_price", stop, OrderType.STOP in priced),
    ):
        if needed and not (value is not None and math.isfinite(value) and value > 0):
            raise OrderRejectedError(f"{where}: {name} {value!r} must be a positive price")
    if not (math.isfinite(order.qty) and order.qty > 0):
        raise OrderRejectedError(f"{where}: quantity {order.qty!r} must be positive")
    # a MARKET order's notional uses Binance's average price, which only the venue knows
    result = conform(rules, order.side, order.order_type, order.qty, limit, stop, order.tif, None)
    if isinstance(result, Refused):
        raise OrderRejectedError(f"{where}: refused before sending: {result}")
    params = {
        "symbol": order.asset_id,
        "side": "BUY" if order.side is Side.BUY else "SELL",
        "type": ORDER_TYPES[order.order_type],
        "quantity": decimal_text(result.qty),
        "newClientOrderId": venue_id,
        "newOrderRespType": resp_type,
    }
    if result.limit_price is not None:
        params["price"] = decimal_text(result.limit_price)
        params["timeInForce"] = "GTC"
    if result.stop_price is not None:
        params["stopPrice"] = decimal_text(result.stop_price)
    return Conformance(params, decimal_of(order.qty) - result.qty)


# which prices each order type carries (LIMIT: the limit price, STOP: the stop price)
_PRICED = {
    OrderType.MARKET: (),
    OrderType.LIMIT: (OrderType.LIMIT,),
    OrderType.STOP: (OrderType.STOP,),
    OrderType.STOP_LIMIT: (OrderType.LIMIT, OrderType.STOP),
}
