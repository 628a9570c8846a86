"""Instrument rules: what a venue accepts for one asset (quantity steps, price ticks, minimum
notional, fractional trading), and the pure rule that makes an order conform. Pure: no I/O.

A venue adapter reads them from the venue (Binance ``exchangeInfo`` filters, Alpaca's asset
and tick rules) and hands them over as ``InstrumentRules``; the order book conforms every
order when it is placed (``OrderBook.instruments``), so ``LiveBroker`` sends only what the
venue takes and a paper run with the same rules (``[instruments.<asset>]`` in the config)
refuses what live would.

The rules, in the order ``conform`` applies them:

- a float is read as its 15 significant digits (what a double holds faithfully): the binary
  noise of ``0.1 + 0.2`` is not a quantity anyone asked for, ``0.3`` is;
- quantities round toward zero onto the step grid, anchored at the minimum as the venues
  define it (``(qty - min_qty) % qty_step == 0``): never more than asked. A market order
  must also sit on the market grid (``market_*``: Binance ``MARKET_LOT_SIZE``) where one is
  set; both grids apply;
- a fractional quantity is refused where the venue has none (``fractionable``), and takes
  the only time in force the venue allows for it (``fractional_tif``: Alpaca ``day``);
- prices (limit and stop alike) round onto the tick grid in the direction that is never a
  worse price than asked: a buy's down, a sell's up. A protective sell stop therefore
  triggers at most a tick *earlier*, never later (the loss it caps is never larger than
  asked), and a stop-limit's two prices move the same way, so its limit never crosses its
  stop;
- minimum and maximum quantity, price and notional (qty × limit, stop, or the reference
  price of a market order) are checked on the rounded numbers.

An order that cannot conform is refused with the rule named (``instrument <rule>: ...``),
never rounded into something else. Amounts go to the venue as exact decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from tradeloop.errors import ConfigError
from tradeloop.events import OrderType, Side, TimeInForce

__all__ = [
    "Conformed",
    "InstrumentRules",
    "Refused",
    "conform",
    "decimal_of",
    "decimal_text",
    "rules_from_table",
]

_DIGITS = 15  # significant decimal digits a double carries faithfully


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """One asset's trading rules at a venue. ``None`` means the venue sets no such rule.

    ``price_ticks`` lists ``(from_price, tick)`` pairs in rising order: the tick of a price is
    the last pair whose ``from_price`` is at or below it (Alpaca: ``((0, 0.0001), (1, 0.01))``;
    Binance: one pair ``((0, tickSize),)``). ``market_*`` apply to market orders on top of the
    plain ones (Binance ``MARKET_LOT_SIZE``). ``fractional_tif`` is the only time in force a
    fractional quantity may use (Alpaca: ``day``). The notional limits apply to market orders
    only where ``*_applies_to_market`` says so (Binance ``applyMinToMarket``).
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
    max_notional_applies_to_market: bool = True
    fractionable: bool = True
    fractional_tif: TimeInForce | None = None

    def tick(self, price: Decimal) -> Decimal | None:
        """The price increment in force at ``price`` (None: any price)."""
        found = None
        for start, tick in self.price_ticks:
            if price >= start:
                found = tick
        return found


@dataclass(frozen=True, slots=True)
class Conformed:
    """An order as the venue will take it: exact decimal quantity and prices, and what
    conforming changed (``changes``, for the order's message and the log)."""

    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    changes: tuple[str, ...] = field(default=())


class Refused(str):
    """Why no rounding makes an order acceptable: the message (``instrument <rule>: <asset>:
    ...``) as a plain string, with ``rule``, the ``InstrumentRules`` field it breaks."""

    rule: str

    def __new__(cls, rule: str, message: str) -> Refused:
        refused = super().__new__(cls, message)
        refused.rule = rule
        return refused


def decimal_of(value: float) -> Decimal:
    """``value`` as the decimal it stands for: its 15 significant digits, no binary noise."""
    return Decimal(format(value, f".{_DIGITS}g"))


def decimal_text(value: Decimal) -> str:
    """The exact decimal string a venue expects: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def conform(
    rules: InstrumentRules,
    side: Side,
    order_type: OrderType,
    qty: float,
    limit_price: float | None,
    stop_price: float | None,
    tif: TimeInForce,
    reference_price: float | None,
) -> Conformed | Refused:
    """The order rounded to ``rules`` (see the module's rules), or why it cannot be sent."""
    asset = rules.asset_id
    market = order_type is OrderType.MARKET
    asked = decimal_of(qty)
    grids = [(rules.qty_step, rules.min_qty, "qty_step")]
    if market:
        grids.append((rules.market_qty_step, rules.market_min_qty, "market_qty_step"))
    amount = asked
    for _ in range(8):  # two grids: round onto each until both hold (they only go down)
        before = amount
        for step, low, _name in grids:
            amount = _down_to_grid(amount, step, low)
        if amount == before:
            break
    changes = [] if amount == asked else [f"qty {decimal_text(asked)} -> {decimal_text(amount)}"]
    if amount <= 0:
        step = next(s for s, _, _ in grids if s is not None)
        return _refuse(
            "qty_step", asset, f"quantity {decimal_text(asked)} rounds to 0 at {decimal_text(step)}"
        )
    bounds = [("min_qty", rules.min_qty, "max_qty", rules.max_qty)]
    if market:
        bounds.append(
            ("market_min_qty", rules.market_min_qty, "market_max_qty", rules.market_max_qty)
        )
    for low_name, low, high_name, high in bounds:
        if low is not None and amount < low:
            rounded = "" if asked < low else f" (rounded to {decimal_text(amount)})"
            what = f"quantity {decimal_text(asked)}{rounded} < {decimal_text(low)}"
            return _refuse(low_name, asset, what)
        if high is not None and amount > high:
            what = f"quantity {decimal_text(amount)} > {decimal_text(high)}"
            return _refuse(high_name, asset, what)
    off_grid = [name for step, low, name in grids if not _on_grid(amount, step, low)]
    if off_grid:  # two grids with no common point near the quantity
        return _refuse(off_grid[0], asset, f"quantity {decimal_text(asked)} fits no common step")
    fractional = amount != amount.to_integral_value()
    if fractional and not rules.fractionable:
        return _refuse(
            "fractionable",
            asset,
            f"quantity {decimal_text(amount)} is fractional; trade whole units",
        )
    if fractional and rules.fractional_tif is not None and tif is not rules.fractional_tif:
        changes.append(f"tif {tif} -> {rules.fractional_tif} (fractional)")
        tif = rules.fractional_tif
    better = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING  # never a worse price
    prices: dict[str, Decimal | None] = {}
    for name, price in (("limit", limit_price), ("stop", stop_price)):
        value = None if price is None else _to_tick(rules, decimal_of(price), better)
        prices[name] = value
        if value is None:
            continue
        if price is not None and value != decimal_of(price):
            changes.append(f"{name} {decimal_text(decimal_of(price))} -> {decimal_text(value)}")
        if value <= 0:
            return _refuse("price_ticks", asset, f"{name} price {price!r} rounds to {value}")
        if rules.min_price is not None and value < rules.min_price:
            return _refuse(
                "min_price",
                asset,
                f"{name} price {decimal_text(value)} < {decimal_text(rules.min_price)}",
            )
        if rules.max_price is not None and value > rules.max_price:
            return _refuse(
                "max_price",
                asset,
                f"{name} price {decimal_text(value)} > {decimal_text(rules.max_price)}",
            )
    limit, stop = prices["limit"], prices["stop"]
    basis = limit if limit is not None else stop
    if basis is None and reference_price is not None:
        basis = decimal_of(reference_price)
    market_like = order_type in (OrderType.MARKET, OrderType.STOP)  # a stop triggers a market
    if basis is not None:
        notional = amount * basis
        if (
            rules.min_notional is not None
            and notional < rules.min_notional
            and (not market_like or rules.min_notional_applies_to_market)
        ):
            return _refuse(
                "min_notional",
                asset,
                f"notional {notional:.8f} < {decimal_text(rules.min_notional)}",
            )
        if (
            rules.max_notional is not None
            and notional > rules.max_notional
            and (not market_like or rules.max_notional_applies_to_market)
        ):
            return _refuse(
                "max_notional",
                asset,
                f"notional {notional:.8f} > {decimal_text(rules.max_notional)}",
            )
    return Conformed(amount, limit, stop, tif, tuple(changes))


def rules_from_table(asset_id: str, table: Mapping[str, Any], where: str) -> InstrumentRules:
    """``[instruments.<asset>]`` of a config as rules; decimals as strings (exact) or numbers.

    ``tick_size = "0.01"`` is the one-tick form of ``price_ticks = [["0", "0.0001"],
    ["1", "0.01"]]``. A wrong key or value raises ``ConfigError`` naming it.
    """
    decimals = {
        "qty_step", "min_qty", "max_qty", "market_qty_step", "market_min_qty",
        "market_max_qty", "min_price", "max_price", "min_notional", "max_notional",
    }  # fmt: skip
    flags = {"min_notional_applies_to_market", "max_notional_applies_to_market", "fractionable"}
    known = decimals | flags | {"tick_size", "price_ticks", "fractional_tif"}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        name = f"{where}.{key}"
        if key not in known:
            raise ConfigError(f"unknown key {name}; [{where}] takes {', '.join(sorted(known))}")
        if key in decimals:
            values[key] = _positive(raw, name)
        elif key in flags:
            if not isinstance(raw, bool):
                raise ConfigError(f"{name} = {raw!r} should be true or false")
            values[key] = raw
        elif key == "tick_size":
            values["price_ticks"] = ((Decimal(0), _positive(raw, name)),)
        elif key == "price_ticks":
            values["price_ticks"] = _ticks(raw, name)
        else:
            try:
                values[key] = TimeInForce(raw)
            except ValueError:
                choices = ", ".join(t.value for t in TimeInForce)
                raise ConfigError(f"{name} = {raw!r}: use one of {choices}") from None
    if "tick_size" in table and "price_ticks" in table:
        raise ConfigError(f"{where}: give tick_size or price_ticks, not both")
    return InstrumentRules(asset_id, **values)


# -- internals -------------------------------------------------------------------------------


def _refuse(rule: str, asset_id: str, what: str) -> Refused:
    return Refused(rule, f"instrument {rule}: {asset_id}: {what}")


def _down_to_grid(amount: Decimal, step: Decimal | None, low: Decimal | None) -> Decimal:
    """Toward zero onto ``low + k × step`` (``low`` is the anchor the venue counts from)."""
    if step is None or step <= 0:
        return amount
    anchor = low if low is not None and amount >= low else Decimal(0)
    return anchor + ((amount - anchor) / step).to_integral_value(rounding=ROUND_DOWN) * step


def _on_grid(amount: Decimal, step: Decimal | None, low: Decimal | None) -> bool:
    return _down_to_grid(amount, step, low) == amount


def _to_tick(rules: InstrumentRules, value: Decimal, rounding: str) -> Decimal:
    """Onto the tick grid (anchored at ``min_price``); a rounding that lands in a coarser
    tick's range is rounded again there, in the same direction."""
    for _ in range(4):
        tick = rules.tick(value)
        if tick is None or tick <= 0:
            return value
        anchor = rules.min_price if rules.min_price is not None and value >= rules.min_price else 0
        rounded = anchor + ((value - anchor) / tick).to_integral_value(rounding=rounding) * tick
        if rounded == value:
            return value
        value = rounded
    return value


def _positive(raw: Any, name: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ConfigError(f'{name} = {raw!r} should be a decimal string such as "0.001"')
    try:
        value = Decimal(raw) if isinstance(raw, str) else decimal_of(float(raw))
    except InvalidOperation:
        raise ConfigError(f'{name} = {raw!r} should be a decimal string such as "0.001"') from None
    if not (value.is_finite() and value > 0):
        raise ConfigError(f"{name} = {raw!r} must be a positive number")
    return value


def _ticks(raw: Any, name: str) -> tuple[tuple[Decimal, Decimal], ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f'{name} should be a list of [from_price, tick] pairs: [["0", "0.01"]]')
    pairs = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2):
            raise ConfigError(f"{name}: {item!r} is not a [from_price, tick] pair")
        start = Decimal(0) if item[0] in (0, "0") else _positive(item[0], name)
        pairs.append((start, _positive(item[1], name)))
    if [p[0] for p in pairs] != sorted(p[0] for p in pairs):
        raise ConfigError(f"{name}: the from_price values must rise")
    return tuple(pairs)
