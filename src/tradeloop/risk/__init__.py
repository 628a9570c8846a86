"""Risk: protective exit rules, portfolio guards, and the manager that applies them."""

from tradeloop.risk.context import RiskContext
from tradeloop.risk.decision import RiskDecision, RiskPlan
from tradeloop.risk.guards import MaxDrawdownHalt, MaxExposure, MaxPositionSize, OrderCheck
from tradeloop.risk.manager import RiskManager
from tradeloop.risk.rules import (
    DynamicTrailingStop,
    RiskRule,
    StopLoss,
    TakeProfit,
    TimeBasedExit,
    VolatilityScaledStopLoss,
)

__all__ = [
    "DynamicTrailingStop",
    "MaxDrawdownHalt",
    "MaxExposure",
    "MaxPositionSize",
    "OrderCheck",
    "RiskContext",
    "RiskDecision",
    "RiskManager",
    "RiskPlan",
    "RiskRule",
    "StopLoss",
    "TakeProfit",
    "TimeBasedExit",
    "VolatilityScaledStopLoss",
]
