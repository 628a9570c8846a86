"""The daemon's result: the same ``BacktestResult`` as a backtest, built by the one result
builder (``results.build``) from the bars and the book the journal holds, when a run ends and
on demand (``tradeloop report --state-dir DIR``, read-only, while the daemon runs).

The facts a result states (strategy, context, risk rules) are remembered in the journal when
the daemon starts, and the risk manager's counts with every timestamp, so a result built later
from the journal alone says what one built at the end would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tradeloop.broker.base import RuntimeBroker
from tradeloop.broker.paper import PaperBroker
from tradeloop.errors import ConfigError
from tradeloop.results.build import RunFacts, build_result, risk_report
from tradeloop.results.result import BacktestResult
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.journal import JOURNAL_FILE, Journal
from tradeloop.setup import Setup

__all__ = ["remember_facts", "result_from_journal", "run_result"]


def remember_facts(journal: Journal, setup: Setup, runtime: LiveRuntime) -> None:
    """Keep what a later result needs to say about this run."""
    facts = {
        "strategy": setup.name,
        "context": list(runtime.context.names),
        "periods_per_year": setup.periods_per_year or 252.0,
    }
    journal.remember("facts", json.dumps(facts))


def run_result(
    journal: Journal, broker: RuntimeBroker, setup: Setup, runtime: LiveRuntime
) -> BacktestResult | None:
    """The result of the run so far (None before its first timestamp)."""
    table = journal.handled_bars()
    if table is None:
        return None
    facts = RunFacts(
        strategy=setup.name,
        context=runtime.context.names,
        periods_per_year=setup.periods_per_year or 252.0,
        risk=runtime.risk,
        extra={"runtime": runtime.counters()},
    )
    return build_result(table, broker, facts, exact=isinstance(broker, PaperBroker))


def result_from_journal(state_dir: Path) -> BacktestResult:
    """The result a daemon's journal describes, built without the daemon (read-only)."""
    path = state_dir / JOURNAL_FILE
    if not path.exists():
        raise ConfigError(
            f"{path}: no journal here. Fix: give the daemon's state_dir (its [run] state_dir)"
        )
    journal = Journal.reader(path)
    try:
        saved = journal.load()
        table = journal.handled_bars()
        remembered = journal.recall("initial_cash")
        facts: dict[str, Any] = json.loads(journal.recall("facts") or "{}")
    finally:
        journal.close()
    if table is None or saved.last_ts_ns is None:
        raise ConfigError(f"{path}: the run has not handled a bar yet; nothing to report")
    if remembered is None:
        raise ConfigError(f"{path}: the journal does not say the run's starting cash")
    broker = PaperBroker(float(remembered))
    broker.restore(saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks)
    broker.restore_carry(saved.live)  # borrow fees: cash the fills alone do not explain
    risk_state = saved.runtime.get("risk")
    result_facts = RunFacts(
        strategy=str(facts.get("strategy", journal.strategy)),
        context=tuple(facts.get("context", ())),
        periods_per_year=float(facts.get("periods_per_year", 252.0)),
        risk=_risk_summary(risk_state) if risk_state else None,
    )
    # a live book may have moved with reconciliation, without a fill: report, not assert
    return build_result(table, broker, result_facts, exact=False)


def _risk_summary(state: dict[str, Any]) -> dict[str, Any]:
    return risk_report(
        {
            "risk_exits": dict(state.get("exits", {})),
            "guard_interventions": dict(state.get("guard_messages", {})),
        }
    )
