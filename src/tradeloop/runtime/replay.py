"""The replay loop: walk a BarTable one timestamp at a time through the Dispatcher.

A plain loop with no ``await``: the live runtime drives the same ``Dispatcher.step``. Rows are
converted to Python values a chunk at a time (and only when per-bar callbacks need them), so
memory stays flat and no per-bar dict is built. With a callable feature provider, each
timestamp is prepared on its own, exactly as a stream prepares it: context as of the bar,
then ``FeatureJoin`` (the market function, every asset), then one ``Dispatcher.step``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from tradeloop.data.bars import BarTable
from tradeloop.data.context import EMPTY_SNAPSHOT, Context, ContextSnapshot
from tradeloop.data.features import FeatureJoin
from tradeloop.market_event import BatchEvents, floats
from tradeloop.runtime.dispatch import BarBlock, Dispatcher, frozen_view

__all__ = ["replay"]

_CHUNK_ROWS = 16_384
_PROGRESS_MIN_ROWS = 200_000


def replay(
    table: BarTable,
    dispatcher: Dispatcher,
    context: Context,
    *,
    features: FeatureJoin | None = None,
    progress: bool | None = None,
) -> None:
    """Run every timestamp of ``table`` through ``dispatcher``."""
    n_ts = table.n_timestamps
    names = np.array(table.asset_ids, dtype=object)
    signal_names = tuple(table.signals)
    needs_rows = dispatcher.needs_rows
    snapshot_at = context.at_ns if context else EMPTY_SNAPSHOT
    bounds = table.ts_bounds
    show = (
        progress
        if progress is not None
        else (sys.stderr.isatty() and table.n_rows >= _PROGRESS_MIN_ROWS)
    )
    bar = tqdm(
        total=table.n_rows,
        unit="bar",
        unit_scale=True,
        disable=not show,
        file=sys.stderr,
        mininterval=0.5,
        desc="backtest",
    )
    universe = list(table.asset_ids) if table.complete else None
    k0 = 0
    events = BatchEvents()  # one per run, not per chunk: a complete panel's events never move
    try:
        if features is not None:
            _replay_each(table, dispatcher, snapshot_at, features, bar)
            return
        while k0 < n_ts:
            k1 = int(np.searchsorted(bounds, bounds[k0] + _CHUNK_ROWS, side="right")) - 1
            k1 = min(max(k1, k0 + 1), n_ts)
            r0, r1 = int(bounds[k0]), int(bounds[k1])
            arrays = {  # read-only views: each timestamp's batch slices them as they are
                "open": frozen_view(table.open[r0:r1]),
                "high": frozen_view(table.high[r0:r1]),
                "low": frozen_view(table.low[r0:r1]),
                "close": frozen_view(table.close[r0:r1]),
                "volume": frozen_view(table.volume[r0:r1]),
                **{
                    f"signal:{n}": frozen_view(values[r0:r1]) for n, values in table.signals.items()
                },
            }
            if needs_rows:
                columns = {
                    name: floats(arrays[name])
                    for name in ("open", "high", "low", "close", "volume")
                }
                signals = {n: floats(arrays[f"signal:{n}"]) for n in signal_names}
            else:
                columns = {name: [] for name in ("open", "high", "low", "close", "volume")}
                signals = {}
            block = BarBlock(
                universe * (k1 - k0)  # a complete panel: each timestamp lists the universe
                if universe is not None
                else names[table.asset_code_of(slice(r0, r1))].tolist(),
                columns,
                table.bar_index_of(slice(r0, r1)),
                signals,
                arrays,
                signal_names,
                events,
                layout=universe,
                read_only=True,
            )
            local = (bounds[k0 : k1 + 1] - r0).tolist()
            stamps = table.unique_ts_ns[k0:k1].tolist()
            dispatcher.run(block, stamps, local, snapshot_at)
            bar.update(r1 - r0)
            k0 = k1
    finally:
        bar.close()


def _replay_each(
    table: BarTable,
    dispatcher: Dispatcher,
    snapshot_at: Callable[[int], ContextSnapshot] | ContextSnapshot,
    features: FeatureJoin,
    bar: Any,
) -> None:
    """One timestamp at a time, features joined as a stream joins them."""
    names = np.array(table.asset_ids, dtype=object)
    bounds = table.ts_bounds.tolist()
    signals = list(table.signals.items())
    for k, ts_ns in enumerate(table.unique_ts_ns.tolist()):
        a, b = bounds[k], bounds[k + 1]
        asset_ids = names[table.asset_code_of(slice(a, b))].tolist()
        columns = {
            "open": table.open[a:b],
            "high": table.high[a:b],
            "low": table.low[a:b],
            "close": table.close[a:b],
            "volume": table.volume[a:b],
            **{f"signal:{n}": values[a:b] for n, values in signals},
        }
        per_asset, market = features.ask(asset_ids, ts_ns, columns)
        now = snapshot_at if isinstance(snapshot_at, ContextSnapshot) else snapshot_at(ts_ns)
        snapshot = features.join(ts_ns, asset_ids, columns, per_asset, market, now)
        block = BarBlock.single(
            ts_ns,
            asset_ids,
            columns,
            table.bar_index_of(slice(a, b)),
            needs_rows=dispatcher.needs_rows,
        )
        dispatcher.step(block, snapshot)
        bar.update(b - a)
