"""Strategy factories for the sweep tests (at module level, so spawned workers can import
them) and the small market and grid they run on.

``Threshold`` is the strategy; the factories around it add what a test needs to observe or
break inside a worker process: count data loads, or kill the worker.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeloop import MarketEvent, Strategy
from tradeloop.data.synthetic import synthetic_market
from tradeloop.research.worker import load_count
from tradeloop.risk import MaxPositionSize, RiskManager, StopLoss, TakeProfit

GRID = {"entry": [0.6, 0.65, 0.7], "exit": [0.4, 0.45]}
BARS, VIX = synthetic_market(n_assets=3, n_bars=160, seed=11)


class Threshold(Strategy):
    """Buy 30 % of equity when ``ml_pred`` > ``entry``; sell it when ``ml_pred`` < ``exit``."""

    def __init__(self, entry: float, exit: float) -> None:
        super().__init__()
        self.entry = entry
        self.exit = exit

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        held = self.get_position(event.asset_id)
        prediction = event.signals["ml_pred"]
        if held == 0 and prediction > self.entry:
            self.buy_percent(event.asset_id, 0.30)
        elif held > 0 and prediction < self.exit:
            self.close_position(event.asset_id)


def threshold(entry: float, exit: float) -> Threshold:
    """The same strategy from a module-level function (a factory need not be a class)."""
    return Threshold(entry, exit)


class SharpeNamed(Threshold):
    """A strategy whose parameter is named like a metric."""

    def __init__(self, sharpe: float) -> None:
        super().__init__(entry=0.6, exit=0.4)


@dataclass(frozen=True)
class LoadProbe:
    """Writes, for every run, a file named after the worker's pid holding its load count."""

    directory: Path

    def loads_by_pid(self) -> dict[int, list[int]]:
        """For each worker pid, the load count each of its runs saw."""
        loads: dict[int, list[int]] = {}
        for probe in self.directory.iterdir():
            pid = int(probe.name.split("-")[0])
            loads.setdefault(pid, []).append(int(probe.read_text()))
        return loads

    def __call__(self, **params: Any) -> Threshold:
        probe = self.directory / f"{os.getpid()}-{uuid.uuid4().hex}"
        probe.write_text(str(load_count()))
        return Threshold(**params)


@dataclass(frozen=True)
class KillOnce:
    """SIGKILLs its own worker process the first time it builds ``victim`` (a marker file
    remembers that it did), as an out-of-memory kill would; otherwise a plain ``Threshold``."""

    marker: Path
    victim: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, **params: Any) -> Threshold:
        if params == dict(self.victim) and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return Threshold(**params)


def risk_template() -> RiskManager:
    """A stop, a target and a position cap: with the threshold strategy all three act."""
    risk = RiskManager()
    risk.add_rule(StopLoss(0.02)).add_rule(TakeProfit(0.04)).add_rule(MaxPositionSize(0.25))
    return risk


def kill_always(**params: Any) -> Threshold:
    """A run that kills its worker every time (a crash in native code, say)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def chatty(**params: Any) -> Threshold:
    """Prints a line for every run (unflushed: a worker's stdout is block-buffered)."""
    print(f"chatty run {sorted(params.items())}")
    return Threshold(**params)
