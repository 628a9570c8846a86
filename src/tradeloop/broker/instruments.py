"""Instrument rules: what a venue accepts for one asset (quantity steps, price ticks, minimum
notional, fractional trading), and the pure rule that makes an order conform. Pure: no I/O.

A venue adapter reads them from the venue (Binance ``exchangeInfo`` filters, Alpaca's asset
and tick rules) and hands them over as ``InstrumentRules``; ``LiveBroker`` conforms every order
before sending it, and a paper run can apply the same rules, so paper refuses what live would.

Quantities round toward zero to the step (never more than asked); a limit price rounds to the
tick in the safe direction (a buy down, a sell up: never a worse price than asked); a stop
price rounds away from the market's side (a buy stop up, a sell stop down: it never triggers
earlier than asked). Amounts go to the venue as exact decimal strings. An order that cannot
conform (below the minimum quantity or notional, fractional where the venue has none) is
refused here, naming the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from tradeloop.events import OrderType, Side, TimeInForce

__all__ = ["Conformed", "InstrumentRules", "conform", "decimal_text"]


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """One asset's trading rules at a venue. ``None`` means the venue sets no such rule.

    ``price_ticks`` lists ``(from_price, tick)`` pairs in rising order: the tick of a price is
    the last pair whose ``from_price`` is at or below it (Alpaca: ``((0, 0.0001), (1, 0.01))``).
    ``market_*`` apply to market orders where the venue has separate rules (Binance
    ``MARKET_LOT_SIZE``); unset, the plain ones apply. ``fractional_tif`` is the only time in
    force a fractional quantity may use (Alpaca: ``day``).
    """

    asset_id: str
    qty_step: Decimal | None = None
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    market_qty_step: Decimal | None = None
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    price_ticks: tuple[tuple[Decimal, Decimal], ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_notional: Decimal | None = None
    min_notional_applies_to_market: bool = True
    max_notional: Decimal | None = None
    fractionable: bool = True
    fractional_tif: TimeInForce | None = None

    def tick(self, price: Decimal) -> Decimal | None:
        found = None
        for start, tick in self.price_ticks:
            if price >= start:
                found = tick
        return found


@dataclass(frozen=True, slots=True)
class Conformed:
    """An order as the venue will take it: exact decimal quantity and prices."""

    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce


def decimal_text(value: Decimal) -> str:
    """The exact decimal string a venue expects: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def conform(
    rules: InstrumentRules,
    side: Side,
    order_type: OrderType,
    qty: float,
    limit_price: float | None,
    stop_price: float | None,
    tif: TimeInForce,
    reference_price: float | None,
) -> Conformed | str:
    """The order rounded to ``rules``, or the reason it cannot be sent (a rule named)."""
    market = order_type is OrderType.MARKET
    step = (rules.market_qty_step if market else None) or rules.qty_step
    low = (rules.market_min_qty if market else None) or rules.min_qty
    high = (rules.market_max_qty if market else None) or rules.max_qty
    amount = Decimal(repr(qty))
    if step is not None and step > 0:
        amount = (amount / step).to_integral_value(rounding=ROUND_DOWN) * step
    if amount <= 0:
        return f"{rules.asset_id}: quantity {qty!r} rounds to 0 at the step {step}"
    if low is not None and amount < low:
        return f"{rules.asset_id}: quantity {decimal_text(amount)} is below the minimum {low}"
    if high is not None and amount > high:
        return f"{rules.asset_id}: quantity {decimal_text(amount)} is above the maximum {high}"
    fractional = amount != amount.to_integral_value()
    if fractional and not rules.fractionable:
        return f"{rules.asset_id}: not fractionable at the venue; trade whole units"
    if fractional and rules.fractional_tif is not None:
        tif = rules.fractional_tif
    buy = side is Side.BUY
    limit = _to_tick(rules, limit_price, ROUND_FLOOR if buy else ROUND_CEILING)
    stop = _to_tick(rules, stop_price, ROUND_CEILING if buy else ROUND_FLOOR)
    for name, price in (("limit", limit), ("stop", stop)):
        if price is None:
            continue
        if price <= 0:
            return f"{rules.asset_id}: {name} price rounds to {price} at the tick"
        if rules.min_price is not None and price < rules.min_price:
            return f"{rules.asset_id}: {name} price {price} is below the minimum {rules.min_price}"
        if rules.max_price is not None and price > rules.max_price:
            return f"{rules.asset_id}: {name} price {price} is above the maximum {rules.max_price}"
    basis = limit if limit is not None else stop
    if basis is None and reference_price is not None:
        basis = Decimal(repr(reference_price))
    if basis is not None and (not market or rules.min_notional_applies_to_market):
        notional = amount * basis
        if rules.min_notional is not None and notional < rules.min_notional:
            return (
                f"{rules.asset_id}: notional {notional:.8f} is below the venue's minimum "
                f"{rules.min_notional}"
            )
        if rules.max_notional is not None and notional > rules.max_notional:
            return (
                f"{rules.asset_id}: notional {notional:.8f} is above the venue's maximum "
                f"{rules.max_notional}"
            )
    return Conformed(amount, limit, stop, tif)


def _to_tick(rules: InstrumentRules, price: float | None, rounding: str) -> Decimal | None:
    if price is None:
        return None
    value = Decimal(repr(price))
    tick = rules.tick(value)
    if tick is None or tick <= 0:
        return value
    return (value / tick).to_integral_value(rounding=rounding) * tick
