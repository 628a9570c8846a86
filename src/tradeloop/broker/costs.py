"""Commission and slippage models. Pure arithmetic: quantities and prices in, money out.

A float is accepted wherever a model is: ``commission=0.001`` means 0.1 % of notional
(``PercentCommission``), ``slippage=0.0005`` means 5 bps against you (``BpsSlippage``). Both
fractions must be below 1 (a ``ConfigError``: 1.5 would pay more than the trade, 5 is
usually 5 bps meant), and one over 1 % warns (``ImplausibleCostWarning``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tradeloop.errors import ConfigError

__all__ = [
    "BpsSlippage",
    "CommissionModel",
    "FixedCommission",
    "ImplausibleCostWarning",
    "NoSlippage",
    "PerShareCommission",
    "PercentCommission",
    "SlippageModel",
    "VolumeShareSlippage",
    "as_commission",
    "as_slippage",
    "check_cost_fraction",
]


@runtime_checkable
class CommissionModel(Protocol):
    def commission(self, qty: float, price: float) -> float:
        """Commission in cash for one fill of ``qty`` (> 0) at ``price``."""
        ...


@runtime_checkable
class SlippageModel(Protocol):
    def max_qty(self, volume: float) -> float:
        """The most one bar of ``volume`` can fill (``inf`` for no limit)."""
        ...

    def price(self, side_sign: int, price: float, qty: float, volume: float) -> float:
        """The fill price after slippage; ``side_sign`` is +1 to buy, -1 to sell."""
        ...


@dataclass(frozen=True, slots=True)
class PercentCommission:
    """``rate`` × notional (0.001 = 10 bps)."""

    rate: float

    def __post_init__(self) -> None:
        check_cost_fraction("commission", self.rate)

    def commission(self, qty: float, price: float) -> float:
        return qty * price * self.rate


@dataclass(frozen=True, slots=True)
class PerShareCommission:
    """``per_share`` × qty, at least ``minimum`` per fill (US broker style)."""

    per_share: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        _non_negative("per-share commission", self.per_share)
        _non_negative("minimum commission", self.minimum)

    def commission(self, qty: float, price: float) -> float:
        return max(qty * self.per_share, self.minimum)


@dataclass(frozen=True, slots=True)
class FixedCommission:
    """The same ``amount`` for every fill."""

    amount: float

    def __post_init__(self) -> None:
        _non_negative("fixed commission", self.amount)

    def commission(self, qty: float, price: float) -> float:
        return self.amount


@dataclass(frozen=True, slots=True)
class NoSlippage:
    def max_qty(self, volume: float) -> float:
        return math.inf

    def price(self, side_sign: int, price: float, qty: float, volume: float) -> float:
        return price


@dataclass(frozen=True, slots=True)
class BpsSlippage:
    """Pay ``bps`` basis points worse than the reference price: buys higher, sells lower."""

    bps: float

    def __post_init__(self) -> None:
        check_cost_fraction("slippage", self.bps / 10_000.0)

    def max_qty(self, volume: float) -> float:
        return math.inf

    def price(self, side_sign: int, price: float, qty: float, volume: float) -> float:
        return price * (1.0 + side_sign * self.bps / 10_000.0)


@dataclass(frozen=True, slots=True)
class VolumeShareSlippage:
    """Fill at most ``volume_limit`` of a bar's volume, with impact ``price_impact`` × share².

    A 1 % share of volume with the default impact of 0.1 moves the price 0.001 %; what does
    not fit in one bar stays open for the next (a partial fill). A bar with no volume fills
    nothing.
    """

    volume_limit: float = 0.025
    price_impact: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.volume_limit <= 1:
            raise ConfigError(f"volume_limit must be in (0, 1], got {self.volume_limit}")
        _non_negative("price_impact", self.price_impact)

    def max_qty(self, volume: float) -> float:
        return 0.0 if not volume > 0 else self.volume_limit * volume

    def price(self, side_sign: int, price: float, qty: float, volume: float) -> float:
        share = qty / volume
        return price * (1.0 + side_sign * self.price_impact * share * share)


class ImplausibleCostWarning(UserWarning):
    """A cost that is allowed but unlikely to be meant (over 1 % of a trade)."""


# a fraction of notional (or of price) above this is allowed, with a warning
_PLAUSIBLE = 0.01


def check_cost_fraction(what: str, fraction: float) -> None:
    """A cost given as a fraction (of notional or price): finite, >= 0, < 1; over 1 % warns.

    A fraction of 1 or more pays the whole trade (or more: negative fill prices), which is
    never meant: usually basis points given as a fraction (5 for 5 bps, which is 0.0005).
    """
    _non_negative(what, fraction)
    bps = f"{fraction:g} bps is {fraction / 10_000:g}"
    if fraction >= 1:
        raise ConfigError(
            f"{what} {fraction:g} is {fraction:.0%} of every trade: a {what} is a fraction "
            f"(0.001 = 10 bps) and must be < 1. Fix: meant basis points? {bps}"
        )
    if fraction > _PLAUSIBLE:
        warnings.warn(
            f"{what} {fraction:g} is {fraction:.1%} of every trade; typical costs are "
            f"0.0001-0.005 (1-50 bps). Meant basis points? {bps}",
            ImplausibleCostWarning,
            stacklevel=4,
        )


def as_commission(model: CommissionModel | float | None) -> CommissionModel:
    if model is None:
        return PercentCommission(0.0)
    if isinstance(model, int | float):
        return PercentCommission(float(model))
    if isinstance(model, CommissionModel):
        return model
    raise ConfigError(f"commission must be a rate or a commission model, got {model!r}")


def as_slippage(model: SlippageModel | float | None) -> SlippageModel:
    if model is None:
        return NoSlippage()
    if isinstance(model, int | float):
        return BpsSlippage(float(model) * 10_000.0)
    if isinstance(model, SlippageModel):
        return model
    raise ConfigError(f"slippage must be a fraction or a slippage model, got {model!r}")


def _non_negative(what: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{what} must be a finite number >= 0, got {value}")
