"""PaperBroker: SimulationBroker's fill, commission and slippage models on live bars.

Nothing is sent anywhere: orders fill against the bars the runtime receives, exactly as a
replay would fill them, which is what makes a paper run comparable to its backtest. What the
book carries besides orders and fills (borrow fees charged, the day charged up to) goes into
the journal with every commit (``live_state``) and comes back with ``restore_carry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloop.broker.carry import carry_state, restore_carry
from tradeloop.broker.simulation import SimulationBroker

__all__ = ["PaperBroker"]


class PaperBroker(SimulationBroker):
    """A SimulationBroker driven by a live (or replayed) bar stream."""

    def live_state(self) -> dict[str, Any]:
        """What a restart needs besides orders and fills (the journal keeps it each commit)."""
        return carry_state(self.book, self._fee_day)

    def restore_carry(self, state: Mapping[str, Any]) -> None:
        """After ``restore``: the journaled charges' cash, and the day fees were charged to."""
        self._fee_day = restore_carry(self.book, state)
