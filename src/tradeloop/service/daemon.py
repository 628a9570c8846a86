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
atomically (a file is either complete or absent). A strategy that raises ends the run with
a ``strategy_failed`` event, the state as journaled, and exit code 70 (``service.failure``).
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
from tradeloop.runtime.failures import strategy_error
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.control import CONTROL_FILE, Control
from tradeloop.service.failure import EXIT_STRATEGY, failure_event
from tradeloop.service.header import paper_costs, run_header
from tradeloop.service.health import start_health
from tradeloop.service.integrity import open_state
from tradeloop.service.journal import Journal, JournalState
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


async def run_daemon(
    config: DaemonConfig,
    *,
    confirm_live: bool = False,
    fresh: bool = False,
    restored: bool = False,
) -> int:
    """Run until the stream ends or a stop signal arrives; return the exit code.

    The state_dir is locked and its journal checked first (``service.integrity``); ``fresh``
    archives an earlier run's state, ``restored`` accepts a journal put back from a backup.
    """
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
    paper = _paper_broker(config, setup) if venue is None else None  # a bad cost: refused now
    state = open_state(
        config.state_dir, run_header(config, setup), log, fresh=fresh, restored=restored
    )
    journal, saved = state.journal, state.saved
    gate = PreTradeGate(config.risk)
    supervisor = Supervisor(config.supervision, gate, log=log)
    control = Control(config.state_dir / CONTROL_FILE, gate, log)
    client: VenueClient | None = None
    try:
        if venue is None:
            assert paper is not None
            broker: PaperBroker | LiveBroker = paper
            broker.book.instruments.update(config.instruments)  # paper refuses what live would
            if journal.recall("initial_cash") is None:  # for tradeloop report
                journal.remember("initial_cash", repr(paper.initial_cash))
            source: Any = WebSocketFeed(config.feed_url)
        else:
            client = venue.client(config.venue_settings)
            broker = await _live_broker(client, venue.name, journal, config, log)
            source = venue.feed(config.venue_settings)
        broker.book.mint_client_id = journal.client_id_minter()
        if saved.last_ts_ns is not None:
            broker.restore(*_book_of(saved))
            if isinstance(broker, LiveBroker):
                broker.restore_live(saved.trade_ids, saved.live)
            else:  # borrow fees charged and the day they were charged to
                broker.restore_carry(saved.live)
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
            control.poll()  # a kill that came while the strategy decided: before any send
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
            max_future_s=config.max_future_s,
            max_assets=config.max_assets,
            max_context_names=config.max_context_names,
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
        control.poll()
        health = await start_health(runtime, broker, supervised, gate, config, supervisor)
        supervisor.spawn("health_server", health.run)
        supervisor.spawn("bar_feed", pump.run)
        log.info(
            "daemon_started",
            feed=config.feed_url or config.venue_name,
            health=f"http://{config.health_host}:{health.port}",
            state_dir=str(config.state_dir.absolute()),  # what tradeloop kill must find
        )
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(functools.partial(_asyncio_error, log))
        task = asyncio.create_task(runtime.run())
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stopper(runtime, task, log, signum))
        loop.add_signal_handler(signal.SIGUSR1, control.kill)
        supervisor.spawn("control_watcher", control.watch)
        failure: dict[str, Any] | None = None
        try:
            await task
        except Exception as raised:
            err = strategy_error(raised, strategy, runtime.current_ts_ns)
            if err is None:
                raise  # tradeloop's own failure: a crash (exit 1), not the strategy's
            failure = failure_event(err, raised)
            log.error("strategy_failed", message=str(err), **failure)
            if isinstance(broker, PaperBroker):  # report what the journal holds, no more
                broker = _paper_broker(config, setup)
                broker.restore(*_book_of(journal.load()))
        finally:
            await supervisor.close()  # no task books or sends any more...
            if link is not None and failure is None:
                # ...but what the last bar decided, and its fills (never after a strategy
                # error: that bar was never journaled)
                await _drain(link, log)
            await health.close()
    finally:
        await supervisor.close()
        if client is not None:
            await client.close()
    try:
        result = run_result(journal, broker, setup, runtime)
    finally:
        journal.close()
    summary = write_state(
        config.state_dir, runtime, broker, supervised, gate, run_id, result, journal.seq, failure
    )
    state.lock.release()
    log.info("daemon_stopped", **summary)
    return EXIT_STRATEGY if failure is not None else 0


def _book_of(saved: JournalState) -> tuple[Any, ...]:
    """``broker.restore``'s arguments from what the journal holds."""
    return saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks


def _paper_broker(config: DaemonConfig, setup: Setup) -> PaperBroker:
    """The paper broker: each cost from the config, else the setup's, else the default."""
    costs = paper_costs(config, setup)
    return PaperBroker(float(costs.pop("initial_cash")), **costs)


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


def _asyncio_error(log: Any, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """What asyncio would print to stderr raw (a task's unretrieved exception, a callback
    that raised): one JSON event instead, through the redacting log (URLs in exceptions)."""
    error = context.get("exception")
    log.error(
        "asyncio_error",
        message=str(context.get("message", "")),
        error=repr(error) if error is not None else None,
        task=repr(context.get("task") or context.get("future") or "")[:200],
    )
