"""Step 12, paper vs backtest: the bundled strategy as a backtest and as a paper run, side by side.

The paper run is the live path for real: a replay server on 127.0.0.1 streams the sample bars
over a WebSocket, the asyncio runtime hands each timestamp to the strategy, and a PaperBroker
fills its orders. Same strategy class, same data: the fills must match one for one.
Run: ``python examples/12_paper_vs_backtest.py`` (about 2 s; also ``make demo``'s second act).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import polars as pl

from tradeloop import Context, Engine
from tradeloop.broker.paper import PaperBroker
from tradeloop.runtime.live import LiveRuntime
from tradeloop.stream.server import ReplayServer
from tradeloop.stream.websocket import WebSocketFeed

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from ml_strategy import MLStrategy  # noqa: E402

COMMISSION = 0.0005


async def paper_run(context: Context) -> tuple[PaperBroker, LiveRuntime]:
    server = await ReplayServer(HERE / "data" / "sample.parquet", context=context).start()
    try:
        broker = PaperBroker(100_000, commission=COMMISSION)
        runtime = LiveRuntime(WebSocketFeed(server.url), MLStrategy(), broker)
        await runtime.run()
    finally:
        await server.close()
    return broker, runtime


def main() -> int:
    context = Context(pl.read_parquet(HERE / "data" / "vix.parquet"))
    engine = Engine(
        feed=HERE / "data" / "sample.parquet",
        strategy=MLStrategy(),
        context=context,
        commission=COMMISSION,
    )
    backtest = engine.run()
    broker, runtime = asyncio.run(paper_run(context))
    paper_fills = [(f.timestamp, f.asset_id, f.side, f.qty, f.price) for f in broker.fills]
    backtest_fills = [
        (f.timestamp, f.asset_id, f.side, f.qty, f.price) for f in engine.broker.fills
    ]
    rows = [
        ("bars", f"{backtest.config['n_bars']:,}", f"{runtime.bars_seen:,}"),
        ("timestamps", f"{backtest.equity_curve.height:,}", f"{runtime.timestamps:,}"),
        ("fills", f"{len(backtest_fills):,}", f"{len(paper_fills):,}"),
        ("final value", f"{backtest['final_value']:,.2f}", f"{broker.equity():,.2f}"),
        ("cash", f"{engine.broker.cash:,.2f}", f"{broker.cash:,.2f}"),
        (
            "positions",
            str(backtest.final_positions),
            str({a: p.qty for a, p in broker.positions().items()}),
        ),
    ]
    print("\nSame strategy, two runtimes        backtest (replay)      paper (WebSocket)")
    for label, left, right in rows:
        print(f"  {label:30s} {left:>20s}   {right:>20s}")
    same = paper_fills == backtest_fills
    print(f"\n  fills identical, one for one: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
