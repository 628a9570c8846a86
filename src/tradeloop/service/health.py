"""The daemon's HTTP side: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``. I/O edge.

``/readyz`` answers 200 once bars flow and no supervised task is lost; otherwise 503 with
what is wrong (``tasks_lost``: each lost task and why). ``/metrics`` counts restarts per task
(``tradeloop_task_restarts_total{task="..."}``) beside the feed, gate and book figures.

The server is itself a supervised task (``HealthServer.run``): it probes its own port every
``probe_every_s`` and raises when the port stops answering, so the supervisor restarts it
(on the same port: the operator's URL stays).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tradeloop.broker.base import RuntimeBroker
from tradeloop.config import DaemonConfig
from tradeloop.errors import ConnectionLostError
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.tasks import Supervisor, TaskHandle
from tradeloop.stream.supervisor import SupervisedFeed

__all__ = ["HealthServer", "start_health"]


class HealthServer:
    """The bound server; ``run`` keeps it serving under the supervisor."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.runner: web.AppRunner | None = None

    async def bind(self) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        server = site._server  # aiohttp keeps the bound socket here; port 0 means "any free"
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.runner = runner

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def run(self, handle: TaskHandle, probe_every_s: float = 5.0) -> None:
        """Serve; rebind after a restart; raise when the port stops answering."""
        if self.runner is None:
            await self.bind()
        try:
            while True:
                await self._probe()
                handle.restored()
                await asyncio.sleep(probe_every_s)
        except BaseException:
            await self.close()
            raise

    async def _probe(self) -> None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
        except (OSError, TimeoutError) as err:
            raise ConnectionLostError(
                f"health server {self.host}:{self.port} does not answer ({err!r})"
            ) from err
        writer.close()
        await writer.wait_closed()


async def start_health(
    runtime: LiveRuntime,
    broker: RuntimeBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    config: DaemonConfig,
    supervisor: Supervisor | None = None,
) -> HealthServer:
    """Bind the health endpoints on ``config.health_host:health_port`` (0: any free port)."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        lost = supervisor.lost() if supervisor is not None else {}
        ready = runtime.timestamps > 0 and not runtime.stopped and not lost
        body: dict[str, Any] = {"ready": ready, "timestamps": runtime.timestamps}
        if lost:
            body["tasks_lost"] = lost
        return web.json_response(body, status=200 if ready else 503)

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
            ("tradeloop_feed_rate_limited_total", "counter", feed.rate_limited),
            ("tradeloop_feature_skips_total", "counter", runtime.feature_skips),
            ("tradeloop_fills_total", "counter", len(broker.fills)),
            ("tradeloop_orders_total", "counter", len(broker.orders)),
            ("tradeloop_equity", "gauge", equity),
            ("tradeloop_gross_exposure", "gauge", gross),
            ("tradeloop_cash", "gauge", broker.cash),
        ]
        text = "".join(f"# TYPE {name} {kind}\n{name} {value}\n" for name, kind, value in lines)
        text += _labelled(
            "tradeloop_gate_mode", "gauge", "mode", {m.value: int(gate.mode is m) for m in GateMode}
        )
        text += _labelled("tradeloop_gate_rejections_total", "counter", "rule", gate.rejections)
        text += _labelled(
            "tradeloop_instrument_rejections_total",
            "counter",
            "rule",
            broker.book.instrument_refusals,
        )
        text += "# TYPE tradeloop_invalid_bars_total counter\n" + "".join(
            f'tradeloop_invalid_bars_total{{rule="{rule}"}} {count}\n'
            for rule, count in sorted(runtime.invalid_bars.items())
        )
        text += "# TYPE tradeloop_unknown_context_total counter\n"
        text += f"tradeloop_unknown_context_total {runtime.unknown_context}\n"
        if supervisor is not None:
            text += _labelled(
                "tradeloop_task_restarts_total", "counter", "task", supervisor.restarts
            )
            lost = supervisor.lost()
            text += _labelled(
                "tradeloop_task_lost",
                "gauge",
                "task",
                {n: int(n in lost) for n in supervisor.names},
            )
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    server = HealthServer(app, config.health_host, config.health_port)
    await server.bind()
    return server


def _labelled(name: str, kind: str, label: str, values: Any) -> str:
    rows = "".join(f'{name}{{{label}="{key}"}} {value}\n' for key, value in sorted(values.items()))
    return f"# TYPE {name} {kind}\n{rows}"
