"""The daemon's HTTP side: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``. I/O edge.

Served from its own thread and event loop, so a strategy callback that holds the daemon's
loop for seconds does not hold the answers: they say the loop is busy instead of saying
nothing. The handlers read plain counters, and the book's figures as the daemon's loop last
published them (``heartbeat``, every quarter second while the loop runs); never the book
itself, which only the daemon's loop touches.

``/readyz`` is 200 when bars flow, the feed is fresh and the run keeps up (``service.lag``
states the rules), else 503 with the reasons; ``/healthz`` is 200 while the loop runs (503
once it has been held for twice ``stale_after_s``); ``/metrics`` exports every figure.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

from tradeloop.broker.base import RuntimeBroker
from tradeloop.config import DaemonConfig
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.lag import Freshness, alive, freshness, not_ready
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
    ) -> None:
        self.runtime, self.broker, self.feed, self.gate = runtime, broker, feed, gate
        self.config = config
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
        self.heartbeat_s = time.time()

    async def heartbeat(self, every_s: float = 0.25) -> None:
        """The daemon's loop task that keeps the published figures (and its pulse) fresh."""
        while True:
            self.publish()
            await asyncio.sleep(every_s)

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
        site = web.TCPSite(runner, self.config.health_host, self.config.health_port)
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
        return not_ready(
            fresh,
            timestamps=self.runtime.timestamps,
            stopped=self.runtime.stopped,
            stale_after_s=self.config.stale_after_s,
            max_lag_s=self.config.health_max_lag_s,
        )

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
            ("tradeloop_feature_skips_total", "counter", runtime.feature_skips),
            *(
                (f"tradeloop_{name}_total", "counter", count)
                for name, count in runtime.intake.counters().items()
            ),
            ("tradeloop_invalid_bars_total", "counter", sum(runtime.invalid_bars.values())),
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
        text += "# TYPE tradeloop_gate_rejections_total counter\n" + "".join(
            f'tradeloop_gate_rejections_total{{rule="{rule}"}} {count}\n'
            for rule, count in sorted(rejections.items())
        )
        text += "# TYPE tradeloop_invalid_bars_total counter\n" + "".join(
            f'tradeloop_invalid_bars_total{{rule="{rule}"}} {count}\n'
            for rule, count in sorted(runtime.invalid_bars.items())
        )
        text += "# TYPE tradeloop_unknown_context_total counter\n"
        text += f"tradeloop_unknown_context_total {runtime.unknown_context}\n"
        return web.Response(text=text, content_type="text/plain")


async def start_health(
    runtime: LiveRuntime,
    broker: RuntimeBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    config: DaemonConfig,
) -> HealthServer:
    """Bind the endpoints on ``config.health_host:health_port`` (0: any free port) in their
    own thread; the daemon runs ``heartbeat()`` on its loop and ``close()``s at the end."""
    return await HealthServer(runtime, broker, feed, gate, config).start()
