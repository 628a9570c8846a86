"""Brokers: one interface, a simulated implementation, commission and slippage models."""

from tradeloop.broker.base import Broker
from tradeloop.broker.costs import (
    BpsSlippage,
    CommissionModel,
    FixedCommission,
    NoSlippage,
    PercentCommission,
    PerShareCommission,
    SlippageModel,
    VolumeShareSlippage,
)
from tradeloop.broker.orders import Order
from tradeloop.broker.simulation import SimulationBroker

__all__ = [
    "BpsSlippage",
    "Broker",
    "CommissionModel",
    "FixedCommission",
    "NoSlippage",
    "Order",
    "PerShareCommission",
    "PercentCommission",
    "SimulationBroker",
    "SlippageModel",
    "VolumeShareSlippage",
]
