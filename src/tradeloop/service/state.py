"""What the daemon writes out when a run stops: fills, orders and a summary, atomically (a
file is either complete or absent). I/O edge.
Files are private (0600, the dir 0700) and a failed write is a ``StateStorageError``
(``service.storage``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tradeloop.broker.base import RuntimeBroker
from tradeloop.results.frames import fills_frame, orders_frame
from tradeloop.results.result import BacktestResult
from tradeloop.risk.gate import PreTradeGate
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.storage import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    atomic_write,
    secure_dir,
    storage_error,
)
from tradeloop.stream.supervisor import SupervisedFeed

__all__ = ["write_state"]


def write_state(
    state_dir: Path,
    runtime: LiveRuntime,
    broker: RuntimeBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    run_id: str,
    result: BacktestResult | None = None,
    journal_seq: int | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write fills, orders, the run's ``BacktestResult`` (``result/``: the same frames and
    metrics a backtest writes) and ``summary.json`` (the daemon's counters and the metrics)."""
    secure_dir(state_dir)
    equity, _ = broker.valuation()
    summary = {
        "run_id": run_id,
        "final_equity": equity,
        "cash": broker.cash,
        "positions": {a: p.qty for a, p in broker.positions().items()},
        "fills": len(broker.fills),
        "orders": len(broker.orders),
        "bars": runtime.bars_seen,
        "timestamps": runtime.timestamps,
        "late_bars": runtime.late,
        "duplicate_bars": runtime.duplicates + feed.duplicates,
        "malformed_messages": feed.skipped,
        "feed_reconnects": feed.reconnects,
        "feed_stalls": feed.stalls,
        "feed_backfilled": feed.backfilled,
        "feature_skips": runtime.feature_skips,
        "gate_mode": gate.mode.value,
        "gate_reason": gate.reason,
        "gate_rejections": dict(gate.rejections),
        "stopped_early": runtime.stopped,
        "replayed_bars_skipped": runtime.replayed,
        "invalid_bars": dict(runtime.invalid_bars),
        **runtime.intake.counters(),  # future bars, unknown assets and context, refused
        "metrics": {} if result is None else dict(result.metrics),
        "journal_seq": journal_seq,  # the journal's last commit (a restart checks it)
        "error": error,  # what stopped the run, when a strategy raised (service.failure)
    }
    if result is not None:
        _write_result(state_dir, result)
    atomic_write(state_dir / "fills.parquet", lambda p: fills_frame(broker.fills).write_parquet(p))
    atomic_write(state_dir / "orders.parquet", lambda p: orders_frame(broker).write_parquet(p))
    atomic_write(state_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    return summary


def _write_result(state_dir: Path, result: BacktestResult) -> None:
    done = state_dir / "result"
    staging = state_dir / f".result.{os.getpid()}.tmp"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        result.to_parquet(staging)
        for inner in staging.rglob("*"):
            os.chmod(inner, PRIVATE_DIR if inner.is_dir() else PRIVATE_FILE)
        os.chmod(staging, PRIVATE_DIR)
        shutil.rmtree(done, ignore_errors=True)
        os.replace(staging, done)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise storage_error(done, "write the result", err) from err
