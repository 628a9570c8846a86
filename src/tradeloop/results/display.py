"""How metrics read to a person: their labels and number formats (summary and HTML report).

P&L labels say whether commission is in: ``realized_pnl`` is booked before commission (the
commission is its own line), a trade's P&L is net of both fills' commission.
"""

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
    "max_drawdown_duration_days": "Max drawdown duration",
    "calmar": "Calmar",
    "n_trades": "Trades",
    "win_rate": "Win rate",
    "profit_factor": "Profit factor",
    "avg_trade_pnl": "Avg trade P&L (net of commission)",
    "exposure_time": "Time in market",
    "avg_gross_exposure": "Avg gross exposure",
    "turnover": "Turnover (x/yr)",
    "commission": "Commission paid",
    "realized_pnl": "Realized P&L (before commission)",
    "unrealized_pnl": "Unrealized P&L (open, before commission)",
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
    if key == "max_drawdown_duration_days":
        return _duration(value)
    return f"{value:.2f}"


def _duration(days: float) -> str:
    """A span in days as a person says it: ``351 days``, ``1 day``, ``5.5 hours``."""
    if days >= 1.0:
        whole = round(days)
        return f"{whole:,} day" + ("" if whole == 1 else "s")
    hours = days * 24.0
    if hours >= 1.0:
        return f"{hours:.1f} hours"
    return f"{hours * 60.0:.0f} minutes"
