"""The daemon's HTTP side: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``. I/O edge.

Served from its own thread and event loop, so a strategy callback that holds the daemon's
loop for seconds does not hold the answers: they say the loop is busy instead of saying
nothing. The handlers read plain counters, and the book's figures as the daemon's loop last
published them (``heartbeat``, every quarter second while the loop runs); never the book
itself, which only the daemon's loop touches.

``/readyz`` is 200 when bars flow, the feed is fresh, the run keeps up (``service.lag``
states the rules) and no supervised task is lost, else 503 with the reasons (``tasks_lost``:
each lost task and why); ``/healthz`` is 200 while the loop runs (503 once it has been held
for twice ``stale_after_s``); ``/metrics`` exports every figure, restarts per task included
(``tradeloop_task_restarts_total{task="..."}``).

The publishing is itself a supervised task (``run``, the ``health_server``): it raises if the
server's thread has died, so the supervisor restarts it and the endpoints come back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

from tradeloop.broker.base import RuntimeBroker
from tradeloop.config import DaemonConfig
from tradeloop.errors import ConnectionLostError
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.lag import Freshness, alive, freshness, not_ready
from tradeloop.service.tasks import Supervisor, TaskHandle
from tradeloop.stream.supervisor import SupervisedFeed

__all__ = ["HealthServer", "start_health"]


class HealthServer:
    """The server's thread and loop, and what the daemon's loop publishes to it."""

    def __init__(
        self,
        runtime: LiveRuntime,
        broker: RuntimeBroker,
        feed: SupervisedFeed,
        gate: PreTradeGate,
        config: DaemonConfig,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.runtime, self.broker, self.feed, self.gate = runtime, broker, feed, gate
        self.config = config
        self.supervisor = supervisor
        self.instrument_refusals: dict[str, int] = {}
        self.port = config.health_port
        self.started_s = self.heartbeat_s = time.time()
        self.book: dict[str, float] = {}
        self.publish()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tradeloop-health", daemon=True
        )
        self._runner: web.AppRunner | None = None

    def publish(self) -> None:
        """On the daemon's loop: the book's figures for the server's thread."""
        equity, gross = self.broker.valuation()
        self.book = {
            "equity": equity,
            "gross_exposure": gross,
            "cash": self.broker.cash,
            "fills": len(self.broker.fills),
            "orders": len(self.broker.orders),
        }
        self.instrument_refusals = dict(self.broker.book.instrument_refusals)
        self.heartbeat_s = time.time()

    async def heartbeat(self, every_s: float = 0.25) -> None:
        """The daemon's loop task that keeps the published figures (and its pulse) fresh."""
        while True:
            self.publish()
            await asyncio.sleep(every_s)

    async def run(self, handle: TaskHandle, every_s: float = 0.25) -> None:
        """The supervised ``health_server`` task: publish, and raise if the server's thread
        died (the supervisor then restarts it: a new thread, the same port)."""
        if not self._thread.is_alive():
            await asyncio.to_thread(self._revive)
        while True:
            if not self._thread.is_alive():
                raise ConnectionLostError(f"the health server's thread died (port {self.port})")
            self.publish()
            handle.restored()
            await asyncio.sleep(every_s)

    def _revive(self) -> None:
        """(In a worker thread.) Release the dead loop's socket, then serve again from a new
        thread on the same port."""
        old, runner = self._loop, self._runner
        if runner is not None and not old.is_closed():
            old.run_until_complete(runner.cleanup())
            self._runner = None
        if not old.is_closed():
            old.close()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tradeloop-health", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._bind(), self._loop).result(10)

    async def start(self) -> HealthServer:
        self._thread.start()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._bind(), self._loop))
        return self

    async def close(self) -> None:
        if self._runner is not None:
            done = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            await asyncio.wrap_future(done)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5.0)
        if not self._thread.is_alive():
            self._loop.close()

    # -- on the server's thread ---------------------------------------------------------------

    async def _bind(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.health_host, self.port)  # a revival: same port
        await site.start()
        server = site._server  # aiohttp keeps the bound socket here; port 0 means "any free"
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._runner = runner

    def _fresh(self) -> Freshness:
        return freshness(
            now_s=time.time(),
            started_s=self.started_s,
            last_message_s=self.feed.last_message_s,
            newest_delivered_ns=self.feed.newest_bar_ns,
            handled_ns=self.runtime.last_flushed,
            heartbeat_s=self.heartbeat_s,
        )

    def _reasons(self, fresh: Freshness) -> list[str]:
        reasons = not_ready(
            fresh,
            timestamps=self.runtime.timestamps,
            stopped=self.runtime.stopped,
            stale_after_s=self.config.stale_after_s,
            max_lag_s=self.config.health_max_lag_s,
        )
        lost = self._lost()
        reasons += [f"task {name} lost: {why}" for name, why in sorted(lost.items())]
        return reasons

    def _lost(self) -> dict[str, str]:
        return dict(self.supervisor.lost()) if self.supervisor is not None else {}

    async def _healthz(self, request: web.Request) -> web.Response:
        fresh = self._fresh()
        ok = alive(fresh, stale_after_s=self.config.stale_after_s)
        return web.json_response(
            {"status": "ok" if ok else "hung", "loop_busy_s": round(fresh.loop_busy_s, 3)},
            status=200 if ok else 503,
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        fresh = self._fresh()
        reasons = self._reasons(fresh)
        body: dict[str, Any] = {
            "ready": not reasons,
            "timestamps": self.runtime.timestamps,
            "feed_silent_s": round(fresh.feed_silent_s, 3),
            "bar_lag_s": fresh.bar_lag_s,
        }
        if reasons:
            body["reasons"] = reasons
        lost = self._lost()
        if lost:
            body["tasks_lost"] = lost
        return web.json_response(body, status=503 if reasons else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        runtime, feed, gate, book = self.runtime, self.feed, self.gate, self.book
        fresh = self._fresh()
        lines: list[tuple[str, str, float]] = [
            ("tradeloop_bars_total", "counter", runtime.bars_seen),
            ("tradeloop_timestamps_total", "counter", runtime.timestamps),
            ("tradeloop_late_bars_total", "counter", runtime.late),
            ("tradeloop_duplicate_bars_total", "counter", runtime.duplicates + feed.duplicates),
            ("tradeloop_malformed_messages_total", "counter", feed.skipped),
            ("tradeloop_feed_reconnects_total", "counter", feed.reconnects),
            ("tradeloop_feed_stalls_total", "counter", feed.stalls),
            ("tradeloop_feed_backfilled_total", "counter", feed.backfilled),
            ("tradeloop_feed_rate_limited_total", "counter", feed.rate_limited),
            ("tradeloop_feature_skips_total", "counter", runtime.feature_skips),
            *(
                (f"tradeloop_{name}_total", "counter", count)
                for name, count in runtime.intake.counters().items()
            ),
            ("tradeloop_fills_total", "counter", book["fills"]),
            ("tradeloop_orders_total", "counter", book["orders"]),
            ("tradeloop_equity", "gauge", book["equity"]),
            ("tradeloop_gross_exposure", "gauge", book["gross_exposure"]),
            ("tradeloop_cash", "gauge", book["cash"]),
            ("tradeloop_feed_silent_seconds", "gauge", fresh.feed_silent_s),
            ("tradeloop_bar_lag_seconds", "gauge", fresh.bar_lag_s or 0.0),
            ("tradeloop_bar_age_seconds", "gauge", fresh.bar_age_s or 0.0),
            ("tradeloop_event_loop_busy_seconds", "gauge", fresh.loop_busy_s),
            ("tradeloop_ready", "gauge", 0.0 if self._reasons(fresh) else 1.0),
        ]
        text = "".join(f"# TYPE {name} {kind}\n{name} {value}\n" for name, kind, value in lines)
        text += "# TYPE tradeloop_gate_mode gauge\n" + "".join(
            f'tradeloop_gate_mode{{mode="{mode.value}"}} {int(gate.mode is mode)}\n'
            for mode in GateMode
        )
        rejections = gate.rejections.copy()  # one C-level copy: the daemon's loop may add
        text += _labelled("tradeloop_gate_rejections_total", "counter", "rule", rejections)
        text += _labelled(
            "tradeloop_instrument_rejections_total", "counter", "rule", self.instrument_refusals
        )
        text += _labelled(
            "tradeloop_invalid_bars_total", "counter", "rule", dict(runtime.invalid_bars)
        )
        supervisor = self.supervisor
        if supervisor is not None:
            text += _labelled(
                "tradeloop_task_restarts_total", "counter", "task", dict(supervisor.restarts)
            )
            lost = self._lost()
            text += _labelled(
                "tradeloop_task_lost",
                "gauge",
                "task",
                {n: int(n in lost) for n in supervisor.names},
            )
        return web.Response(text=text, content_type="text/plain")


async def start_health(
    runtime: LiveRuntime,
    broker: RuntimeBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    config: DaemonConfig,
    supervisor: Supervisor | None = None,
) -> HealthServer:
    """Bind the endpoints on ``config.health_host:health_port`` (0: any free port) in their
    own thread; the daemon runs ``run()`` under its supervisor and ``close()``s at the end."""
    return await HealthServer(runtime, broker, feed, gate, config, supervisor).start()


def _labelled(name: str, kind: str, label: str, values: Any) -> str:
    rows = "".join(f'{name}{{{label}="{key}"}} {value}\n' for key, value in sorted(values.items()))
    return f"# TYPE {name} {kind}\n{rows}"
