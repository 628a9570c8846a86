"""The paper-trading daemon: config in, a live runtime with health endpoints, state out.

Every timestamp is committed to an SQLite journal (``state_dir/journal.sqlite``); a restart
restores it, backfills the bars it missed from the feed's history, and carries on after the
last committed bar.

Every order passes the pre-trade gate (``[risk]`` in the config). The operator's kill
switch is ``state_dir/control.json`` (written by ``tradeloop kill``; SIGUSR1 writes a halt
into it too): it is read every half second and at start, so a kill survives a restart.

Every long-lived task runs under one ``Supervisor`` (``tradeloop.service.tasks``): the bar
feed (``FeedPump``), the control watcher and the health server; live, also the sender, the
execution stream and the reconcile loop (``tradeloop.service.venue_tasks``). A failure is
logged and restarted with backoff; a task lost for ``[supervision] restore_deadline_s``
turns ``/readyz`` 503, and one that books money moves the gate to ``on_task_lost``.

I/O edge. It wires a ``WebSocketFeed``, the user's strategy and a ``PaperBroker`` into a
``LiveRuntime``; serves ``/healthz``, ``/readyz`` and Prometheus ``/metrics`` with aiohttp;
logs JSON lines with run, strategy and mode bound; stops gracefully on SIGTERM/SIGINT (the
bar in progress finishes); and writes its fills, orders and a summary into ``state_dir``
atomically (a file is either complete or absent).
"""

from __future__ import annotations

import asyncio
import functools
import signal
import uuid
from typing import Any

import structlog

from tradeloop.broker.live import LiveBroker
from tradeloop.broker.paper import PaperBroker
from tradeloop.config import DaemonConfig
from tradeloop.errors import ConfigError
from tradeloop.plugins import load_feature_provider, load_setup
from tradeloop.risk.gate import PreTradeGate
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.control import CONTROL_FILE, Control
from tradeloop.service.health import start_health
from tradeloop.service.journal import Journal
from tradeloop.service.reconcile import Tolerance, reconcile
from tradeloop.service.results import remember_facts, run_result
from tradeloop.service.state import write_state
from tradeloop.service.tasks import Supervisor
from tradeloop.service.venue_tasks import VenueTasks
from tradeloop.setup import Setup
from tradeloop.stream.pump import FeedPump
from tradeloop.stream.supervisor import SupervisedFeed
from tradeloop.stream.websocket import WebSocketFeed
from tradeloop.venue import VenueClient, load_venue

__all__ = ["run_daemon"]


async def run_daemon(config: DaemonConfig, *, confirm_live: bool = False) -> int:
    """Run until the stream ends or a stop signal arrives; return the exit code."""
    if config.mode == "live" and not confirm_live:
        raise ConfigError(
            'run.mode = "live" trades real money: start it with --confirm-live. '
            'To practise, set mode = "paper".'
        )
    run_id = uuid.uuid4().hex[:12]
    log = structlog.get_logger().bind(run_id=run_id, strategy=config.strategy, mode=config.mode)
    setup = load_setup(config.strategy, "run.strategy")
    strategy = setup.build(**config.params)
    risk = setup.fresh_risk()
    features = (
        load_feature_provider(config.features, "run.features")
        if config.features is not None
        else setup.feature_provider()
    )
    venue = load_venue(config.venue_name or "") if config.mode == "live" else None
    journal = Journal(config.state_dir / "journal.sqlite", config.strategy)
    saved = journal.load()
    gate = PreTradeGate(config.risk)
    supervisor = Supervisor(config.supervision, gate, log=log)
    client: VenueClient | None = None
    try:
        if venue is None:
            broker: PaperBroker | LiveBroker = _paper_broker(config, setup, journal)
            broker.book.instruments.update(config.instruments)  # paper refuses what live would
            source: Any = WebSocketFeed(config.feed_url)
        else:
            client = venue.client(config.venue_settings)
            broker = await _live_broker(client, venue.name, journal, config, log)
            source = venue.feed(config.venue_settings)
        broker.book.mint_client_id = journal.client_id_minter()
        if saved.last_ts_ns is not None:
            broker.restore(
                saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks
            )
            if isinstance(broker, LiveBroker):
                broker.restore_live(saved.trade_ids, saved.live)
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
        pump = FeedPump(supervised)

        def commit(ts_ns: int) -> None:
            journal.commit(ts_ns, broker, runtime.state(), strategy.get_state())

        link = None
        if isinstance(broker, LiveBroker):
            check = functools.partial(
                reconcile,
                broker,
                gate,
                on_mismatch=config.on_mismatch,
                log=log,
                tolerance=Tolerance(config.qty_tolerance, config.cash_tolerance),
            )
            link = VenueTasks(
                broker,
                lambda: commit(runtime.last_flushed or saved.last_ts_ns or 0),
                check,
                reconcile_every_s=config.reconcile_every_s,
                instruments_refresh_s=config.instruments_refresh_s,
                assets=_assets(config),
                log=log,
            )
        runtime = LiveRuntime(
            pump,
            strategy,
            broker,
            gate=gate,
            risk=risk,
            features=features,
            universe=config.universe,
            context_names=config.context if config.context else (setup.context_names() or None),
            resume={**saved.runtime, "last_ts_ns": saved.last_ts_ns},
            record=journal.record_bars,
            on_timestamp=commit,
            after_timestamp=link.wake if link is not None else None,
        )
        gate.bind(broker)
        remember_facts(journal, setup, runtime)
        if link is not None:
            # the strategy starts only after the book agrees with the venue (or is halted)
            await check(since_ns=saved.fills[-1].ts_ns if saved.fills else 0)
            commit(saved.last_ts_ns or 0)
            supervisor.spawn("execution_stream", link.execution_stream, books_money=True)
            supervisor.spawn("reconcile_loop", link.reconcile_loop, books_money=True)
            supervisor.spawn("sender", link.sender, books_money=True)
        control = Control(config.state_dir / CONTROL_FILE, gate, log)
        control.poll()
        health = await start_health(runtime, broker, supervised, gate, config, supervisor)
        supervisor.spawn("health_server", health.run)
        supervisor.spawn("bar_feed", pump.run)
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
        supervisor.spawn("control_watcher", control.watch)
        try:
            await task
        finally:
            await supervisor.close()  # no task books or sends any more...
            if link is not None:
                await _drain(link, log)  # ...but what the last bar decided, and its fills
            await health.close()
    finally:
        await supervisor.close()
        if client is not None:
            await client.close()
    try:
        result = run_result(journal, broker, setup, runtime)
    finally:
        journal.close()
    summary = write_state(config.state_dir, runtime, broker, supervised, gate, run_id, result)
    log.info("daemon_stopped", **summary)
    return 0


def _paper_broker(config: DaemonConfig, setup: Setup, journal: Journal) -> PaperBroker:
    """The paper broker: each cost from the config, else the setup's, else the default. Its
    starting cash is remembered, so a restart (and ``tradeloop report``) use the same."""
    costs = setup.broker_options()
    for key in ("initial_cash", "commission", "slippage"):
        if getattr(config, key) is not None:
            costs[key] = getattr(config, key)
    initial_cash = float(costs.pop("initial_cash", 100_000.0))
    remembered = journal.recall("initial_cash")
    if remembered is None:
        journal.remember("initial_cash", repr(initial_cash))
    return PaperBroker(initial_cash, **costs)


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
    broker = LiveBroker(
        client,
        float(remembered),
        fractional=config.fractional,
        client_id=journal.client_id_minter(),
        unknown_deadline_s=config.unknown_deadline_s,
    )
    broker.book.instruments.update(config.instruments)  # where the venue gives none
    known = await broker.load_instruments(_assets(config))
    log.info("instruments_loaded", assets=known)
    return broker


def _assets(config: DaemonConfig) -> tuple[str, ...]:
    """The assets whose instrument rules a live run needs at start."""
    symbols = config.venue_settings.get("symbols") or ()
    return tuple(config.universe or ()) + tuple(s for s in symbols if isinstance(s, str))


async def _drain(link: VenueTasks, log: Any) -> None:
    """At shutdown: what the last timestamp decided still goes out, and every fill the stream
    had no time to deliver is booked over REST (``VenueTasks.finish``), so the book the
    daemon leaves is the venue's."""
    try:
        await asyncio.wait_for(link.finish(), 10.0)
    except Exception as err:  # the journal has it; a restart looks it up and reconciles
        log.warning("final_send_failed", error=f"{type(err).__name__}: {err}")


def _stopper(runtime: LiveRuntime, task: asyncio.Task[None], log: Any, signum: int) -> Any:
    def stop() -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        runtime.request_stop()  # finish the timestamp in hand...
        # ...or, if the feed is silent, stop waiting for it after a second
        asyncio.get_running_loop().call_later(1.0, task.cancel)

    return stop
