"""Alpaca's instrument rules for US equities, as ``InstrumentRules``. Pure: no I/O.

From the venue's own data and documented rules:

- ``GET /v2/assets/{symbol}`` (https://docs.alpaca.markets/reference/get-v2-assets-symbol_or_asset_id):
  ``fractionable`` says whether a quantity may have a fraction; ``tradable`` whether the
  asset can be traded at all; ``min_trade_increment`` / ``price_increment`` where the asset
  carries them (crypto does; equities leave them out).
- Fractional trading (https://docs.alpaca.markets/docs/fractional-trading): fractional
  quantities up to 9 decimal places, and only with ``time_in_force = day``.
- Sub-penny rule (https://docs.alpaca.markets/docs/orders-at-alpaca, SEC Rule 612): limit and
  stop prices in $0.01 at or above $1.00, in $0.0001 below $1.00; otherwise 422 "sub-penny
  increment does not fulfill minimum pricing criteria".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tradeloop.broker.instruments import InstrumentRules
from tradeloop.errors import ConfigError, VenueProtocolError
from tradeloop.events import TimeInForce

__all__ = ["EQUITY_PRICE_TICKS", "FRACTION_STEP", "WHOLE_STEP", "rules_from_asset"]

EQUITY_PRICE_TICKS = ((Decimal(0), Decimal("0.0001")), (Decimal(1), Decimal("0.01")))
FRACTION_STEP = Decimal("0.000000001")  # 9 decimal places
WHOLE_STEP = Decimal(1)


def rules_from_asset(raw: Mapping[str, Any]) -> InstrumentRules:
    """One ``GET /v2/assets/{symbol}`` answer → the rules an order for it must keep."""
    try:
        symbol = str(raw["symbol"])
        fractionable = bool(raw.get("fractionable", False))
        tradable = bool(raw.get("tradable", True))
        step = _decimal(raw.get("min_trade_increment"))
        tick = _decimal(raw.get("price_increment"))
        low = _decimal(raw.get("min_order_size"))
    except (KeyError, TypeError) as err:
        raise VenueProtocolError(f"asset not understood: {str(raw)[:160]} ({err!r})") from err
    if not tradable or raw.get("status", "active") != "active":
        raise ConfigError(
            f"alpaca: {symbol} is not tradable (status {raw.get('status')!r}, tradable "
            f"{tradable}). Fix: remove it from [venue] symbols"
        )
    if step is None:
        step = FRACTION_STEP if fractionable else WHOLE_STEP
    ticks = ((Decimal(0), tick),) if tick is not None else EQUITY_PRICE_TICKS
    return InstrumentRules(
        asset_id=symbol,
        qty_step=step,
        min_qty=low,
        price_ticks=ticks,
        fractionable=fractionable,
        fractional_tif=TimeInForce.DAY,
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation as err:
        raise TypeError(f"not a number: {value!r}") from err
    return number if number > 0 else None
