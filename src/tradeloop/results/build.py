"""The one result builder: the bars a run saw and its broker's book in, a ``BacktestResult``
out. Pure. A replay, a stream run (``Engine`` over a feed) and the paper/live daemon (at the
end of a run, and on demand from its journal) all build their result here, so their metrics
compare.

The equity curve is rebuilt vectorised from the fills and the bars' closes; it must end where
the broker's own live accounting ended (an internal invariant). A live run's book can also
move without a fill (reconciliation adopts the venue's positions and cash): its difference
from the fills is reported in ``config["unexplained_equity"]`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.broker.base import RuntimeBroker
from tradeloop.broker.records import FillLog
from tradeloop.broker.sessions import periods_per_year
from tradeloop.data.bars import BarTable
from tradeloop.results.benchmark import equal_weight_buy_and_hold
from tradeloop.results.equity import EquityRecord, equity_record
from tradeloop.results.frames import fills_frame, orders_frame, positions_frame
from tradeloop.results.metrics import compute_metrics, daily_returns
from tradeloop.results.prices import traded_prices
from tradeloop.results.result import BacktestResult
from tradeloop.results.trades import round_trip_columns, trades_frame

__all__ = ["RunFacts", "build_result", "equity_frame", "risk_report"]


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the result says about the run besides its book: names and settings."""

    strategy: str
    context: tuple[str, ...] = ()
    periods_per_year: float | None = None  # None: by the broker's calendar, else 252
    # a RiskManager (its rules, exits and guard interventions are reported), or that report
    risk: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # timings, the runtime's counters


def build_result(
    table: BarTable, broker: RuntimeBroker, facts: RunFacts, *, exact: bool = True
) -> BacktestResult:
    """The result of a run over ``table`` that left ``broker`` as it is.

    ``exact``: the book moved only by fills (replay, paper), so the rebuilt equity must equal
    the broker's; a live book that reconciliation adjusted passes ``exact=False``.
    """
    charges = [(c.ts_ns, c.amount) for c in broker.book.charges]
    record = equity_record(table, broker.fills, broker.initial_cash, charges)
    live_equity, _ = broker.valuation()
    gap = live_equity - float(record.equity[-1]) if len(record.equity) else 0.0
    if exact and abs(gap) > 1e-6 * max(1.0, abs(live_equity)):
        raise AssertionError(  # an internal invariant, never the user's fault
            f"tradeloop bug: equity rebuilt from fills {record.equity[-1]!r} != broker "
            f"accounting {live_equity!r}; please report it with the data that caused it"
        )
    extra = dict(facts.extra)
    if not exact:
        extra["unexplained_equity"] = gap
    return _result(table, broker, record, facts, extra)


def _result(
    table: BarTable,
    broker: RuntimeBroker,
    record: EquityRecord,
    facts: RunFacts,
    extra: dict[str, Any],
) -> BacktestResult:
    """The metrics now (from the fill log's columns and the equity record); every frame only
    when it is first read, so a sweep that keeps the metrics builds none."""
    log = FillLog.of(broker.fills).arrays()
    trips = round_trip_columns(log)
    calendar = getattr(broker, "calendar", None)
    periods = facts.periods_per_year
    if periods is None and len(record.ts_ns):
        periods = periods_per_year(calendar, int(record.ts_ns[0]), int(record.ts_ns[-1]))
    periods = 252.0 if periods is None else periods
    metrics = compute_metrics(
        ts_ns=record.ts_ns,
        equity=record.equity,
        gross_exposure=record.gross_exposure,
        positions=record.positions,
        initial_cash=broker.initial_cash,
        trades=trips.pnl,
        traded_notional=math.fsum((log.qty * log.price).tolist()),  # exact: the same in any process
        commission=broker.portfolio.commission_paid,
        periods_per_year=periods,
    )
    portfolio, marks = broker.portfolio, broker.marks
    metrics["realized_pnl"] = portfolio.realized_pnl
    metrics["unrealized_pnl"] = float(
        sum(
            (marks.get(asset, p.avg_price) - p.avg_price) * p.qty
            for asset, p in sorted(portfolio.positions.items())
        )
    )
    book = broker.book
    config = {
        "strategy": facts.strategy,
        "n_bars": table.n_rows,
        "n_assets": len(table.asset_ids),
        "signals": list(table.signals),
        "context": list(facts.context),
        "initial_cash": broker.initial_cash,
        "commission": repr(book.commission_model),
        "slippage": repr(book.slippage_model),
        "fill_timing": getattr(broker, "fill_timing", "venue"),
        "allow_short": book.allow_short,
        "fractional": book.fractional,
        "cash_shortfall": getattr(broker, "cash_shortfall", None),
        "margin": repr(book.margin) if book.margin is not None else None,
        "margin_calls": len(getattr(broker, "margin_calls", ())),
        "borrow_fees": sum(c.amount for c in book.charges),
        "calendar": calendar,
        "periods_per_year": periods,
        **_risk_config(facts.risk),
        **extra,
    }
    initial_cash = broker.initial_cash
    fills = broker.fills

    def curve() -> pl.DataFrame:
        return equity_frame(record, initial_cash)

    return BacktestResult(
        metrics,
        final_positions={a: p.qty for a, p in portfolio.positions.items()},
        config=config,
        equity_curve=curve,
        fills=lambda: fills_frame(fills),
        orders=lambda: orders_frame(broker),
        trades=lambda: trades_frame(log, trips),
        daily_returns=lambda: daily_returns(record.ts_ns, record.equity, initial_cash),
        positions=lambda: positions_frame(broker),
        benchmark_curve=lambda: pl.DataFrame(
            {
                "timestamp": _timestamps(record.ts_ns),
                "equity": equal_weight_buy_and_hold(table, initial_cash),
            }
        ),
        prices=lambda: traded_prices(table, fills),
    )


def equity_frame(record: EquityRecord, initial_cash: float) -> pl.DataFrame:
    """``result.equity_curve``: the record's columns with the drawdown from the running peak."""
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], record.equity)))[1:]
    return pl.DataFrame(
        {
            "timestamp": _timestamps(record.ts_ns),
            "equity": record.equity,
            "cash": record.cash,
            "positions_value": record.equity - record.cash,
            "gross_exposure": record.gross_exposure,
            "drawdown": record.equity / peak - 1.0,
            "n_positions": record.positions,
        }
    )


def _timestamps(ts_ns: npt.NDArray[np.int64]) -> pl.Series:
    return (
        pl.Series("timestamp", ts_ns).cast(pl.Datetime("ns", "UTC")).cast(pl.Datetime("us", "UTC"))
    )


def risk_report(risk: Any) -> dict[str, Any]:
    """What a result says about the risk manager: rules, guards, exits, interventions."""
    return _risk_config(risk)


def _risk_config(risk: Any) -> dict[str, Any]:
    if risk is None:
        return {}
    if isinstance(risk, Mapping):  # already reported (a daemon's journal keeps it)
        return dict(risk)
    halted = risk.halted_at
    return {
        "risk_rules": [getattr(rule, "name", type(rule).__name__) for rule in risk.rules],
        "risk_guards": [guard.name for guard in risk.guards],
        "risk_exits": dict(risk.exits),
        "guard_interventions": dict(risk.guard_messages),
        "halted_at": None if halted is None else str(halted),
    }
