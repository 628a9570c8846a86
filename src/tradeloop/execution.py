"""Brokers under the module name the design documents use (``tradeloop.execution``).

The implementations live in ``tradeloop.broker``; this module only re-exports them so code
written as ``from ml4t.backtest.execution import SimulationBroker`` runs with the package name
changed.
"""

from tradeloop.broker.simulation import SimulationBroker

__all__ = ["SimulationBroker"]
