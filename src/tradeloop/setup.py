"""Setup: one strategy with everything it trades with, defined once in the user's own file.

    setup = Setup(MLStrategy, params={"entry": 0.7}, risk=risk, features=provider,
                  context=vix, commission=5e-4)

The same object runs everywhere, with nothing rewritten: ``Engine(bars, setup).run()``,
``sweep(setup, grid, bars)`` and ``walk_forward(setup, ...)`` (the grid's values override
``params``; the risk manager included), ``tradeloop backtest --strategy my_setup.py:setup``,
and the daemon's ``[run] strategy = "my_setup.py:setup"`` for ``tradeloop paper`` and
``tradeloop live``.

A risk manager holds one run's state (positions it watches, exits it counted), so every run
gets a fresh copy of the one given here (or calls it, when it is a function returning one);
the feature provider is shared, never copied: the copy's rules keep reading it.
``context`` is market-wide history for a replay; over a stream its names are the context the
strategy expects (``None`` until the first value arrives, as in a replay).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeloop.broker.costs import CommissionModel, SlippageModel
from tradeloop.data.context import context_names
from tradeloop.data.features import FeatureProvider
from tradeloop.errors import ConfigError
from tradeloop.risk.manager import RiskManager
from tradeloop.strategy.base import Strategy

__all__ = ["BROKER_OPTIONS", "Setup"]

# what a setup may say about the broker (every runtime builds its broker from these)
BROKER_OPTIONS = (
    "initial_cash",
    "commission",
    "slippage",
    "fill_timing",
    "allow_short",
    "fractional",
    "cash_shortfall",
    "calendar",
)


@dataclass(frozen=True)
class Setup:
    """A strategy (class or factory) and its parameters, risk, features, context and costs."""

    strategy: Callable[..., Strategy]
    params: Mapping[str, Any] = field(default_factory=dict)
    risk: RiskManager | Callable[[], RiskManager] | None = None
    features: FeatureProvider | None = None
    context: Any = None
    initial_cash: float | None = None
    commission: CommissionModel | float | None = None
    slippage: SlippageModel | float | None = None
    fill_timing: str | None = None
    allow_short: bool | None = None
    fractional: bool | None = None
    cash_shortfall: str | None = None
    calendar: str | Mapping[str, str] | None = None
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        if not callable(self.strategy):
            raise ConfigError(
                f"Setup(strategy=...) takes a Strategy class or a function returning one, got "
                f"{self.strategy!r}"
            )
        if isinstance(self.strategy, Strategy):
            raise ConfigError(
                "Setup(strategy=...) takes the class, not an instance (each run builds its "
                f"own): Setup({type(self.strategy).__name__}, params={{...}})"
            )
        risk = self.risk
        if risk is not None and not (isinstance(risk, RiskManager) or callable(risk)):
            raise ConfigError(f"Setup(risk=...) takes a RiskManager or a function, got {risk!r}")
        if isinstance(risk, RiskManager) and risk.bound:
            raise ConfigError(
                "Setup(risk=...) got a RiskManager that already ran; give it an unused one "
                "(each run copies it) or a function that builds one"
            )

    @property
    def name(self) -> str:
        return getattr(self.strategy, "__name__", type(self.strategy).__name__)

    def build(self, **params: Any) -> Strategy:
        """A new strategy: ``params`` override the setup's own. A name the strategy does not
        take is a ``ConfigError`` listing what it takes."""
        given = {**self.params, **params}
        try:
            inspect.signature(self.strategy).bind(**given)
        except TypeError as err:
            try:
                takes = ", ".join(inspect.signature(self.strategy).parameters) or "nothing"
            except (TypeError, ValueError):
                takes = "unknown"
            raise ConfigError(
                f"{self.name} does not take {sorted(given)} ({err}); it takes: {takes}"
            ) from None
        except ValueError:
            pass  # no signature to check (a builtin): let the call say what is wrong
        strategy = self.strategy(**given)
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                f"Setup strategy {self.name} built a {type(strategy).__name__}, not a "
                "tradeloop.Strategy"
            )
        return strategy

    def fresh_risk(self) -> RiskManager | None:
        """This run's own risk manager (a copy of the template, or the factory's)."""
        risk = self.risk
        if risk is None:
            return None
        if isinstance(risk, RiskManager):
            shared = {id(p): p for p in (risk.feature_provider, self.features) if p is not None}
            return copy.deepcopy(risk, shared)
        made = risk()
        if not isinstance(made, RiskManager):
            raise ConfigError(
                f"Setup risk factory returned {type(made).__name__}, not a RiskManager"
            )
        return made

    def feature_provider(self) -> FeatureProvider | None:
        """The run's features: the setup's, or (when it has none) the risk manager's."""
        risk_provider = self.risk.feature_provider if isinstance(self.risk, RiskManager) else None
        if self.features is not None and risk_provider not in (None, self.features):
            raise ConfigError(
                "Setup has two feature providers (features= and the RiskManager's); a "
                "strategy and its risk rules read one: give the same object to both"
            )
        return self.features if self.features is not None else risk_provider

    def broker_options(self) -> dict[str, Any]:
        """The broker settings the setup gives (the others keep the broker's defaults)."""
        return {k: getattr(self, k) for k in BROKER_OPTIONS if getattr(self, k) is not None}

    def context_names(self) -> tuple[str, ...]:
        """The context series the strategy expects."""
        return context_names(self.context)

    def replace(self, **changes: Any) -> Setup:
        """A copy with ``changes`` (e.g. ``params={"entry": 0.6}``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def of(cls, found: Any, where: str) -> Setup:
        """A ``Setup`` from what a user's spec named: a setup, or a Strategy class."""
        if isinstance(found, Setup):
            return found
        if isinstance(found, type) and issubclass(found, Strategy):
            return cls(found)
        raise ConfigError(
            f"{where} names a {type(found).__name__}; it must be a Strategy class or a "
            "tradeloop.Setup"
        )
