"""How metrics read to a person: their labels and number formats (summary and HTML report)."""

from __future__ import annotations

import math

__all__ = ["METRIC_LABELS", "format_metric"]

METRIC_LABELS = {
    "initial_cash": "Initial cash",
    "final_value": "Final value",
    "total_return": "Total return",
    "cagr": "CAGR",
    "annual_volatility": "Volatility (ann.)",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "Max drawdown",
    "max_drawdown_duration_days": "Max drawdown duration (days)",
    "calmar": "Calmar",
    "n_trades": "Trades",
    "win_rate": "Win rate",
    "profit_factor": "Profit factor",
    "avg_trade_pnl": "Avg trade P&L",
    "exposure_time": "Time in market",
    "avg_gross_exposure": "Avg gross exposure",
    "turnover": "Turnover (x/yr)",
    "commission": "Commission paid",
    "realized_pnl": "Realized P&L",
    "unrealized_pnl": "Unrealized P&L (open)",
}
_PERCENT = {
    "total_return",
    "cagr",
    "annual_volatility",
    "max_drawdown",
    "win_rate",
    "exposure_time",
    "avg_gross_exposure",
}
_MONEY = {
    "initial_cash",
    "final_value",
    "avg_trade_pnl",
    "commission",
    "realized_pnl",
    "unrealized_pnl",
}


def format_metric(key: str, value: float) -> str:
    """``value`` of metric ``key`` as text: percent, money, count or ratio; NaN reads n/a."""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if key in _PERCENT:
        return f"{value:.2%}"
    if key in _MONEY:
        return f"{value:,.2f}"
    if key == "n_trades":
        return f"{value:,.0f}"
    return f"{value:.2f}"
