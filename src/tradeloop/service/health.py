"""The daemon's HTTP side: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``. I/O edge."""

from __future__ import annotations

from aiohttp import web

from tradeloop.broker.base import RuntimeBroker
from tradeloop.config import DaemonConfig
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.runtime.live import LiveRuntime
from tradeloop.stream.supervisor import SupervisedFeed

__all__ = ["HealthServer", "start_health"]


class HealthServer:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port


async def start_health(
    runtime: LiveRuntime,
    broker: RuntimeBroker,
    feed: SupervisedFeed,
    gate: PreTradeGate,
    config: DaemonConfig,
) -> HealthServer:
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
        text += "# TYPE tradeloop_invalid_bars_total counter\n" + "".join(
            f'tradeloop_invalid_bars_total{{rule="{rule}"}} {count}\n'
            for rule, count in sorted(runtime.invalid_bars.items())
        )
        text += "# TYPE tradeloop_unknown_context_total counter\n"
        text += f"tradeloop_unknown_context_total {runtime.unknown_context}\n"
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
    return HealthServer(runner, port)
