"""Performance metrics from an equity curve and a trade list. Pure arithmetic.

Returns are daily (the last equity of each UTC date, the first day measured from the initial
cash) and annualised with ``periods_per_year`` (252 by default; 365 for markets that trade
every day). Sharpe and Sortino assume a zero risk-free rate; Sortino's downside deviation is
``sqrt(mean(min(r, 0)²))`` over all days. Drawdowns use every timestamp, not just daily closes.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["compute_metrics", "daily_returns"]

_NS_PER_DAY = 86_400 * 1_000_000_000


def daily_returns(
    ts_ns: npt.NDArray[np.int64], equity: npt.NDArray[np.float64], initial_cash: float
) -> pl.DataFrame:
    """``date, equity, return``: one row per UTC date with a bar."""
    days, closes, returns = _daily(ts_ns, equity, initial_cash)
    return pl.DataFrame(
        {
            "date": pl.Series(days * _NS_PER_DAY).cast(pl.Datetime("ns", "UTC")).dt.date(),
            "equity": closes,
            "return": returns,
        }
    )


def _daily(
    ts_ns: npt.NDArray[np.int64], equity: npt.NDArray[np.float64], initial_cash: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each UTC date with a bar (days since the epoch), its last equity, and its return."""
    days = ts_ns // _NS_PER_DAY
    last = np.flatnonzero(np.diff(days, append=days[-1] + 1))
    closes = equity[last]
    previous = np.concatenate(([initial_cash], closes[:-1]))
    return days[last], closes, closes / previous - 1.0


def compute_metrics(
    *,
    ts_ns: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    gross_exposure: npt.NDArray[np.float64],
    positions: npt.NDArray[np.int64],
    initial_cash: float,
    trades: pl.DataFrame | npt.NDArray[np.float64],
    traded_notional: float,
    commission: float,
    periods_per_year: float = 252.0,
) -> dict[str, float]:
    final = float(equity[-1])
    years = (int(ts_ns[-1]) - int(ts_ns[0])) / _NS_PER_DAY / 365.25
    total_return = final / initial_cash - 1.0
    returns = _daily(ts_ns, equity, initial_cash)[2]
    mean = float(returns.mean())
    std = float(returns.std(ddof=1)) if len(returns) > 1 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    root = math.sqrt(periods_per_year)
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else math.nan
    max_dd, dd_days = _drawdown(ts_ns, equity, initial_cash)
    if isinstance(trades, pl.DataFrame):
        pnl = trades["pnl"].to_numpy() if trades.height else np.empty(0)
    else:
        pnl = trades  # each closed trade's pnl (``RoundTrips.pnl``)
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    mean_equity = float(np.mean(equity))
    return {
        "initial_cash": float(initial_cash),
        "final_value": final,
        "total_return": total_return,
        "cagr": cagr,
        "annual_volatility": std * root,
        "sharpe": mean / std * root if std > 0 else math.nan,
        "sortino": mean / downside * root if downside > 0 else math.nan,
        "max_drawdown": max_dd,
        "max_drawdown_duration_days": dd_days,
        "calmar": cagr / abs(max_dd) if max_dd < 0 and not math.isnan(cagr) else math.nan,
        "n_trades": len(pnl),  # a count: an int, so JSON and tables show 12, not 12.0
        "win_rate": float((pnl > 0).mean()) if len(pnl) else math.nan,
        "profit_factor": (wins / losses if losses > 0 else (math.inf if wins > 0 else math.nan)),
        "avg_trade_pnl": float(pnl.mean()) if len(pnl) else math.nan,
        "exposure_time": float((positions > 0).mean()),
        "avg_gross_exposure": float(np.mean(gross_exposure / equity)),
        "turnover": traded_notional / mean_equity / years if years > 0 else math.nan,
        "commission": commission,
    }


def _drawdown(
    ts_ns: npt.NDArray[np.int64], equity: npt.NDArray[np.float64], initial_cash: float
) -> tuple[float, float]:
    """Deepest drop from a running peak (a negative fraction), and the longest time under
    water in days (from a peak to the last timestamp still below it)."""
    curve = np.concatenate(([initial_cash], equity))
    peaks = np.maximum.accumulate(curve)
    at_peak = curve >= peaks
    np.divide(curve, peaks, out=curve)  # in place: a long curve's temporaries add up
    depth = float(curve.min()) - 1.0  # min(x) - 1 == min(x - 1): subtracting 1 is monotone
    del curve, peaks
    times = np.concatenate(([ts_ns[0]], ts_ns))
    since_peak = np.where(at_peak, times, 0)
    np.maximum.accumulate(since_peak, out=since_peak)
    np.subtract(times, since_peak, out=since_peak)
    longest = float(since_peak.max()) / _NS_PER_DAY
    return depth, longest
