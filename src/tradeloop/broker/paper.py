"""PaperBroker: SimulationBroker's fill, commission and slippage models on live bars.

Nothing is sent anywhere: orders fill against the bars the runtime receives, exactly as a
replay would fill them, which is what makes a paper run comparable to its backtest.
"""

from __future__ import annotations

from tradeloop.broker.simulation import SimulationBroker

__all__ = ["PaperBroker"]


class PaperBroker(SimulationBroker):
    """A SimulationBroker driven by a live (or replayed) bar stream."""
