"""`tradeloop serve-replay`: history served as a live bar stream on a local WebSocket."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloop.cli.inputs import context_from, signal_list
from tradeloop.errors import ConfigError

__all__ = ["add"]


def add(commands: Any) -> None:
    replay = commands.add_parser(
        "serve-replay",
        help="stream historical bars over a local WebSocket, as a live feed would",
        description=(
            "Serve DATA (the same files 'backtest' reads) as a live bar stream on "
            "ws://HOST:PORT: every client gets the replay from the start, context values "
            "first at each timestamp, then the bars. With --live-clock it behaves like a "
            "venue instead: one replay runs from the first connection on, clients get only "
            "what is published while they are connected, and fetch what they missed from "
            "GET http://HOST:PORT/history?start_ns=A&end_ns=B.\n\n"
            "Example: tradeloop serve-replay examples/data/sample.parquet "
            "--context examples/data/vix.parquet --port 8765 --speed 60"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("data", type=Path, help="bars with signals (.parquet/.csv)")
    replay.add_argument("--context", type=Path, metavar="PATH", help="market-wide series file")
    replay.add_argument("--signals", metavar="A,B", help="signal columns (default: all numeric)")
    replay.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    replay.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="N x real time between bars (0, the default: as fast as possible)",
    )
    replay.add_argument(
        "--live-clock", action="store_true", help="one shared clock, like a venue (see above)"
    )
    replay.add_argument(
        "--batch", action="store_true", help="one 'bars' message per timestamp, not per bar"
    )
    replay.add_argument(
        "--binary",
        action="store_true",
        help="send each timestamp's bars as one binary columnar frame (implies --batch)",
    )
    replay.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import os

    import structlog

    from tradeloop.logs import configure_logging
    from tradeloop.stream.server import ReplayServer

    configure_logging()
    signals = signal_list(args.signals)
    server = ReplayServer(
        args.data,
        context=context_from(args.context),
        signal_columns=signals,
        speed=args.speed,
        host=args.host,
        port=args.port,
        shared_clock=args.live_clock,
        batched=args.batch,
        binary=args.binary,
    )

    async def serve() -> None:
        import signal

        try:
            await server.start()
        except OSError as err:  # the port is taken, or the address is not this host's
            raise ConfigError(
                f"serve-replay cannot listen on {args.host}:{args.port}: "
                f"{os.strerror(err.errno or 0)}. Fix: --port 0 picks a free port, or stop "
                "what holds this one"
            ) from err
        structlog.get_logger().info(
            "replay_listening", url=server.url, bars=server.table.n_rows, speed=args.speed
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await server.close()

    asyncio.run(serve())
    return 0
