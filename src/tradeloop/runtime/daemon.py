"""The paper-trading daemon: config in, a live runtime with health endpoints, state out.

Every timestamp is committed to an SQLite journal (``state_dir/journal.sqlite``); a restart
restores it, backfills the bars it missed from the feed's history, and carries on after the
last committed bar.

Every order passes the pre-trade gate (``[risk]`` in the config). The operator's kill
switch is ``state_dir/control.json`` (written by ``tradeloop kill``; SIGUSR1 writes a halt
into it too): it is read every half second and at start, so a kill survives a restart.

I/O edge. It wires a ``WebSocketFeed``, the user's strategy and a ``PaperBroker`` into a
``LiveRuntime``; serves ``/healthz``, ``/readyz`` and Prometheus ``/metrics`` with aiohttp;
logs JSON lines with run, strategy and mode bound; stops gracefully on SIGTERM/SIGINT (the
bar in progress finishes); and writes its fills, orders and a summary into ``state_dir``
atomically (a file is either complete or absent).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from tradeloop.broker.live import LiveBroker
from tradeloop.broker.paper import PaperBroker
from tradeloop.broker.simulation import SimulationBroker
from tradeloop.config import DaemonConfig
from tradeloop.data.features import FeatureProvider
from tradeloop.data.supervisor import SupervisedFeed
from tradeloop.data.websocket_feed import WebSocketFeed
from tradeloop.errors import ConfigError
from tradeloop.plugins import load_object, load_strategy_class
from tradeloop.results.frames import fills_frame, orders_frame
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.runtime.journal import Journal
from tradeloop.runtime.live import LiveRuntime
from tradeloop.runtime.reconcile import reconcile
from tradeloop.venue import VenueClient, load_venue

__all__ = ["CONTROL_FILE", "Control", "run_daemon", "write_control"]


async def run_daemon(config: DaemonConfig, *, confirm_live: bool = False) -> int:
    """Run until the stream ends or a stop signal arrives; return the exit code."""
    if config.mode == "live" and not confirm_live:
        raise ConfigError(
            'run.mode = "live" trades real money: start it with --confirm-live. '
            'To practise, set mode = "paper".'
        )
    run_id = uuid.uuid4().hex[:12]
    log = structlog.get_logger().bind(run_id=run_id, strategy=config.strategy, mode=config.mode)
    strategy = load_strategy_class(config.strategy)()
    features = _feature_provider(config.features)
    venue = load_venue(config.venue_name or "") if config.mode == "live" else None
    journal = Journal(config.state_dir / "journal.sqlite", config.strategy)
    saved = journal.load()
    gate = PreTradeGate(config.risk)
    tasks: list[asyncio.Task[None]] = []
    client: VenueClient | None = None
    try:
        if venue is None:
            broker: PaperBroker | LiveBroker = PaperBroker(
                config.initial_cash, commission=config.commission, slippage=config.slippage
            )
            source: Any = WebSocketFeed(config.feed_url)
        else:
            client = venue.client(config.venue_settings)
            broker = await _live_broker(client, venue.name, journal, config, log)
            source = venue.feed(config.venue_settings)
        if saved.last_ts_ns is not None:
            broker.restore(
                saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks
            )
            if isinstance(broker, LiveBroker):
                broker.restore_live(journal.client_ids, saved.trade_ids)
            strategy.set_state(saved.strategy)
            log.info(
                "state_restored",
                after_ts_ns=saved.last_ts_ns,
                orders=len(saved.orders),
                fills=len(saved.fills),
                journal=str(journal.path),
            )
        supervised = SupervisedFeed(
            source, stale_after_s=config.stale_after_s, backfill_from=saved.last_ts_ns
        )

        def commit(ts_ns: int) -> None:
            journal.commit(ts_ns, broker, runtime.state(), strategy.get_state())

        runtime = LiveRuntime(
            supervised,
            strategy,
            broker,
            gate=gate,
            features=features,
            universe=config.universe,
            resume={**saved.runtime, "last_ts_ns": saved.last_ts_ns},
            on_timestamp=commit,
            after_timestamp=(
                _sender(broker, journal, commit) if isinstance(broker, LiveBroker) else None
            ),
        )
        gate.bind(broker)
        if isinstance(broker, LiveBroker):
            check = functools.partial(
                reconcile, broker, gate, journal.client_ids, on_mismatch=config.on_mismatch, log=log
            )
            # the strategy starts only after the book agrees with the venue (or is halted)
            await check(since_ns=saved.fills[-1].ts_ns if saved.fills else 0)
            commit(saved.last_ts_ns or 0)
            tasks.append(asyncio.create_task(_book_executions(broker, commit, runtime)))
            tasks.append(
                asyncio.create_task(_reconcile_every(check, broker, config.reconcile_every_s))
            )
        control = Control(config.state_dir / CONTROL_FILE, gate, log)
        control.poll()
        health = await _start_health(runtime, broker, supervised, gate, config)
        log.info(
            "daemon_started",
            feed=config.feed_url or config.venue_name,
            health=f"http://{config.health_host}:{health.port}",
        )
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(runtime.run())
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stopper(runtime, task, log, signum))
        loop.add_signal_handler(signal.SIGUSR1, control.kill)
        tasks.append(asyncio.create_task(control.watch()))
        try:
            await task
        finally:
            await health.runner.cleanup()
    finally:
        for background in tasks:
            background.cancel()
        if client is not None:
            await client.close()
        journal.close()
    summary = _write_state(config.state_dir, runtime, broker, supervised, gate, run_id)
    log.info("daemon_stopped", **summary)
    return 0


def _feature_provider(spec: str | None) -> FeatureProvider | None:
    if spec is None:
        return None
    found = load_object(spec, "run.features")
    provider = found if isinstance(found, FeatureProvider) else found()
    if not isinstance(provider, FeatureProvider):
        raise ConfigError(
            f"run.features = {spec!r} gave a {type(provider).__name__}; it must be a "
            "FeatureProvider (e.g. CallableFeatureProvider(fn)) or a function returning one"
        )
    return provider


async def _live_broker(
    client: VenueClient, venue: str, journal: Journal, config: DaemonConfig, log: Any
) -> LiveBroker:
    """Start the venue's client; the account's cash at the first start is the run's capital
    (remembered, so a restart re-applies the journaled fills from the same start)."""
    await client.start()
    remembered = journal.recall("initial_cash")
    if remembered is None:
        remembered = repr((await client.snapshot()).cash)
        journal.remember("initial_cash", remembered)
    log.info("venue_connected", venue=venue, initial_cash=float(remembered))
    return LiveBroker(client, float(remembered), fractional=config.fractional)


def _sender(
    broker: LiveBroker, journal: Journal, commit: Callable[[int], None]
) -> Callable[[int], Awaitable[None]]:
    """After each journaled timestamp: send what it decided, then journal the outcome."""

    async def send(ts_ns: int) -> None:
        broker.know(journal.client_ids)
        if broker.outbox or broker.cancels:
            await broker.send()
        await broker.resolve()  # no request unless an outcome is unknown
        commit(ts_ns)

    return send


async def _book_executions(
    broker: LiveBroker, commit: Callable[[int], None], runtime: LiveRuntime
) -> None:
    async for execution in broker.client.executions():
        if broker.apply(execution) is not None:
            commit(runtime.last_flushed or execution.ts_ns)


async def _reconcile_every(
    check: Callable[..., Awaitable[list[str]]], broker: LiveBroker, every_s: float
) -> None:
    while True:
        await asyncio.sleep(every_s)
        await check(since_ns=broker.fills[-1].ts_ns if broker.fills else 0)


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
    runtime: LiveRuntime,
    broker: SimulationBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    config: DaemonConfig,
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
            ("tradeloop_duplicate_bars_total", "counter", runtime.duplicates + feed.duplicates),
            ("tradeloop_malformed_messages_total", "counter", feed.skipped),
            ("tradeloop_feed_reconnects_total", "counter", feed.reconnects),
            ("tradeloop_feed_stalls_total", "counter", feed.stalls),
            ("tradeloop_feed_backfilled_total", "counter", feed.backfilled),
            ("tradeloop_feature_skips_total", "counter", runtime.feature_skips),
            ("tradeloop_fills_total", "counter", len(broker.fills)),
            ("tradeloop_orders_total", "counter", len(broker.orders)),
            ("tradeloop_equity", "gauge", equity),
            ("tradeloop_gross_exposure", "gauge", gross),
            ("tradeloop_cash", "gauge", broker.cash),
        ]
        text = "".join(f"# TYPE {name} {kind}\n{name} {value}\n" for name, kind, value in lines)
        text += "# TYPE tradeloop_gate_mode gauge\n" + "".join(
            f'tradeloop_gate_mode{{mode="{mode.value}"}} {int(gate.mode is mode)}\n'
            for mode in GateMode
        )
        text += "# TYPE tradeloop_gate_rejections_total counter\n" + "".join(
            f'tradeloop_gate_rejections_total{{rule="{rule}"}} {count}\n'
            for rule, count in sorted(gate.rejections.items())
        )
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
    state_dir: Path,
    runtime: LiveRuntime,
    broker: SimulationBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    run_id: str,
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
    }
    _atomic(state_dir / "fills.parquet", lambda p: fills_frame(broker.fills).write_parquet(p))
    _atomic(state_dir / "orders.parquet", lambda p: orders_frame(broker).write_parquet(p))
    _atomic(state_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    return summary


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


CONTROL_FILE = "control.json"


def write_control(state_dir: Path, mode: str, reason: str) -> Path:
    """The operator's switch for a running (or next) daemon: halted, reduce_only or normal."""
    GateMode(mode)  # refuse a mode that does not exist before writing anything
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / CONTROL_FILE
    body = json.dumps({"mode": mode, "reason": reason})
    _atomic(path, lambda p: p.write_text(body))
    return path


class Control:
    """Applies ``control.json`` to the gate whenever its content changes."""

    def __init__(self, path: Path, gate: PreTradeGate, log: Any) -> None:
        self.path, self.gate, self.log = path, gate, log
        self._applied: str | None = None

    def poll(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        if text == self._applied:
            return
        self._applied = text
        try:
            wanted = json.loads(text)
            mode, reason = GateMode(wanted["mode"]), str(wanted.get("reason", ""))
        except (ValueError, KeyError, TypeError) as err:
            self.log.error("control_file_invalid", path=str(self.path), error=str(err))
            return
        if mode is self.gate.mode and self.gate.manual == (mode is not GateMode.NORMAL):
            return  # already in force (restored from the journal)
        self.gate.set_mode(mode, reason or "operator")
        self.log.warning("gate_mode_changed", mode=self.gate.mode.value, reason=self.gate.reason)

    def kill(self) -> None:
        write_control(self.path.parent, GateMode.HALTED.value, "SIGUSR1")
        self.poll()

    async def watch(self, every_s: float = 0.5) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.poll()
