"""How the strategy helpers' keywords become order requests: the order type from the prices
given, and a bracket's legs from ``stop_loss``/``take_profit``. Pure: no broker.

- ``limit`` and ``stop`` make a limit, stop or stop-limit; ``trail_percent`` or
  ``trail_amount`` a trailing stop; ``expire_at`` (a datetime) a good-till-date order.
- ``stop_loss``/``take_profit`` are prices; ``stop_loss_pct``/``take_profit_pct`` fractions
  of the entry's fill price (0.05: 5 % below a long's fill for its stop, above for its
  target; mirrored for a short). Either pair makes a bracket: the entry, then an OCO pair of
  reduce-only exits (one of them alone makes an OTO with that exit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradeloop.broker.orders import OrderRequest
from tradeloop.clock import utc_ns
from tradeloop.errors import OrderError
from tradeloop.events import OrderType, Side, TimeInForce

__all__ = ["BracketLegs", "bracket_legs", "order_kind", "order_request"]

_BUY, _SELL = Side.BUY, Side.SELL


def order_kind(limit: float | None, stop: float | None) -> OrderType:
    """Market, limit, stop or stop-limit, from the prices given."""
    if limit is not None and stop is not None:
        return OrderType.STOP_LIMIT
    if limit is not None:
        return OrderType.LIMIT
    if stop is not None:
        return OrderType.STOP
    return OrderType.MARKET


def order_request(
    asset_id: str,
    side: Side | str,
    qty: float,
    *,
    limit: float | None = None,
    stop: float | None = None,
    tif: TimeInForce | str = TimeInForce.GTC,
    reason: str = "strategy",
    trail_percent: float | None = None,
    trail_amount: float | None = None,
    expire_at: datetime | None = None,
    fill_percent: float | None = None,
    fill_target: bool = False,
) -> OrderRequest:
    """One order as the helpers' keywords describe it (see the module docstring)."""
    trailing = trail_percent is not None or trail_amount is not None
    expire_at_ns = utc_ns(expire_at) if expire_at is not None else None
    tif = tif if type(tif) is TimeInForce else TimeInForce(str(tif).lower())
    if expire_at_ns is not None and tif is TimeInForce.GTC:
        tif = TimeInForce.GTD  # expire_at= alone means good-till-date
    return OrderRequest(
        asset_id,
        side if type(side) is Side else Side(side),
        qty,
        OrderType.TRAILING_STOP if trailing else order_kind(limit, stop),
        limit_price=limit,
        stop_price=stop,
        tif=tif,
        reason=reason,
        expire_at_ns=expire_at_ns,
        trail_amount=trail_amount,
        trail_percent=trail_percent,
        fill_percent=fill_percent,
        fill_target=fill_target,
    )


@dataclass(frozen=True, slots=True)
class BracketLegs:
    """A bracket's exit levels: prices, or fractions of the entry's fill price."""

    stop_loss: float | None = None
    take_profit: float | None = None
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None

    @property
    def any(self) -> bool:
        levels = (self.stop_loss, self.take_profit, self.stop_loss_pct, self.take_profit_pct)
        return any(value is not None for value in levels)


def bracket_legs(entry: OrderRequest, levels: BracketLegs) -> list[OrderRequest]:
    """The reduce-only exits of ``entry``: the stop first, then the target."""
    for price, fraction, name in (
        (levels.stop_loss, levels.stop_loss_pct, "stop_loss"),
        (levels.take_profit, levels.take_profit_pct, "take_profit"),
    ):
        if price is not None and fraction is not None:
            raise OrderError(f"give {name}= (a price) or {name}_pct= (a fraction), not both")
        if fraction is not None and not 0 < fraction < 1:
            raise OrderError(
                f"{name}_pct is a fraction of the fill price in (0, 1), got {fraction}"
            )
    long = entry.side is _BUY
    exit_side = _SELL if long else _BUY
    sign = -1.0 if long else 1.0  # a long's stop lies below its fill, a short's above
    legs = []
    if levels.stop_loss is not None or levels.stop_loss_pct is not None:
        legs.append(
            OrderRequest(
                entry.asset_id,
                exit_side,
                entry.qty,
                OrderType.STOP,
                stop_price=levels.stop_loss,
                reason="stop_loss",
                reduce_only=True,
                from_fill=sign * levels.stop_loss_pct if levels.stop_loss_pct is not None else None,
            )
        )
    if levels.take_profit is not None or levels.take_profit_pct is not None:
        legs.append(
            OrderRequest(
                entry.asset_id,
                exit_side,
                entry.qty,
                OrderType.LIMIT,
                limit_price=levels.take_profit,
                reason="take_profit",
                reduce_only=True,
                from_fill=-sign * levels.take_profit_pct
                if levels.take_profit_pct is not None
                else None,
            )
        )
    return legs
