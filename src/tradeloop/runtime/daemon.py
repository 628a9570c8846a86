"""The paper-trading daemon: config in, a live runtime with health endpoints, state out.

Every timestamp is committed to an SQLite journal (``state_dir/journal.sqlite``); a restart
restores it and carries on after the last committed bar.

I/O edge. It wires a ``WebSocketFeed``, the user's strategy and a ``PaperBroker`` into a
``LiveRuntime``; serves ``/healthz``, ``/readyz`` and Prometheus ``/metrics`` with aiohttp;
logs JSON lines with run, strategy and mode bound; stops gracefully on SIGTERM/SIGINT (the
bar in progress finishes); and writes its fills, orders and a summary into ``state_dir``
atomically (a file is either complete or absent).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from tradeloop.broker.paper import PaperBroker
from tradeloop.config import DaemonConfig
from tradeloop.data.supervisor import SupervisedFeed
from tradeloop.data.websocket_feed import WebSocketFeed
from tradeloop.errors import ConfigError
from tradeloop.plugins import load_strategy_class
from tradeloop.results.frames import fills_frame, orders_frame
from tradeloop.runtime.journal import Journal
from tradeloop.runtime.live import LiveRuntime

__all__ = ["run_daemon"]


async def run_daemon(config: DaemonConfig, *, confirm_live: bool = False) -> int:
    """Run until the stream ends or a stop signal arrives; return the exit code."""
    if config.mode == "live":
        if not confirm_live:
            raise ConfigError(
                'run.mode = "live" trades real money: start it with --confirm-live. '
                'To practise, set mode = "paper".'
            )
        raise ConfigError(
            'no live venue adapter is installed in this build yet; run mode = "paper"'
        )
    run_id = uuid.uuid4().hex[:12]
    log = structlog.get_logger().bind(run_id=run_id, strategy=config.strategy, mode=config.mode)
    strategy = load_strategy_class(config.strategy)()
    broker = PaperBroker(
        config.initial_cash, commission=config.commission, slippage=config.slippage
    )
    journal = Journal(config.state_dir / "journal.sqlite", config.strategy)
    saved = journal.load()
    if saved.last_ts_ns is not None:
        broker.restore(saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks)
        strategy.set_state(saved.strategy)
        log.info(
            "state_restored",
            after_ts_ns=saved.last_ts_ns,
            orders=len(saved.orders),
            fills=len(saved.fills),
            journal=str(journal.path),
        )
    feed = WebSocketFeed(config.feed_url)
    supervised = SupervisedFeed(feed, stale_after_s=config.stale_after_s)
    runtime = LiveRuntime(
        supervised,
        strategy,
        broker,
        resume={**saved.runtime, "last_ts_ns": saved.last_ts_ns},
        on_timestamp=lambda ts_ns: journal.commit(
            ts_ns, broker, runtime.state(), strategy.get_state()
        ),
    )
    health = await _start_health(runtime, broker, supervised, config)
    log.info(
        "daemon_started", feed=config.feed_url, health=f"http://{config.health_host}:{health.port}"
    )
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(runtime.run())
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopper(runtime, task, log, signum))
    try:
        await task
    finally:
        await health.runner.cleanup()
        journal.close()
    summary = _write_state(config.state_dir, runtime, broker, supervised, run_id)
    log.info("daemon_stopped", **summary)
    return 0


def _stopper(runtime: LiveRuntime, task: asyncio.Task[None], log: Any, signum: int) -> Any:
    def stop() -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        runtime.request_stop()  # finish the timestamp in hand...
        # ...or, if the feed is silent, stop waiting for it after a second
        asyncio.get_running_loop().call_later(1.0, task.cancel)

    return stop


class _Health:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port


async def _start_health(
    runtime: LiveRuntime, broker: PaperBroker, feed: SupervisedFeed, config: DaemonConfig
) -> _Health:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        ready = runtime.timestamps > 0 and not runtime.stopped
        return web.json_response(
            {"ready": ready, "timestamps": runtime.timestamps}, status=200 if ready else 503
        )

    async def metrics(request: web.Request) -> web.Response:
        equity, gross = broker.valuation()
        lines = [
            ("tradeloop_bars_total", "counter", runtime.bars_seen),
            ("tradeloop_timestamps_total", "counter", runtime.timestamps),
            ("tradeloop_late_bars_total", "counter", runtime.late),
            ("tradeloop_duplicate_bars_total", "counter", runtime.duplicates),
            ("tradeloop_malformed_messages_total", "counter", feed.skipped),
            ("tradeloop_feed_reconnects_total", "counter", feed.reconnects),
            ("tradeloop_feed_stalls_total", "counter", feed.stalls),
            ("tradeloop_fills_total", "counter", len(broker.fills)),
            ("tradeloop_orders_total", "counter", len(broker.orders)),
            ("tradeloop_equity", "gauge", equity),
            ("tradeloop_gross_exposure", "gauge", gross),
            ("tradeloop_cash", "gauge", broker.cash),
        ]
        text = "".join(f"# TYPE {name} {kind}\n{name} {value}\n" for name, kind, value in lines)
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.health_host, config.health_port)
    await site.start()
    server = site._server  # aiohttp keeps the bound socket here; port 0 means "any free port"
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else config.health_port
    return _Health(runner, port)


def _write_state(
    state_dir: Path, runtime: LiveRuntime, broker: PaperBroker, feed: SupervisedFeed, run_id: str
) -> dict[str, Any]:
    state_dir.mkdir(parents=True, exist_ok=True)
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
        "duplicate_bars": runtime.duplicates,
        "malformed_messages": feed.skipped,
        "feed_reconnects": feed.reconnects,
        "feed_stalls": feed.stalls,
        "stopped_early": runtime.stopped,
        "replayed_bars_skipped": runtime.replayed,
    }
    _atomic(state_dir / "fills.parquet", lambda p: fills_frame(broker.fills).write_parquet(p))
    _atomic(state_dir / "orders.parquet", lambda p: orders_frame(broker).write_parquet(p))
    _atomic(state_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    return summary


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)
