"""Which strategy callback raised, at which bar and for which asset. Pure: a traceback in.

The daemon hands every exception out of its runtime to ``strategy_error``: when a
frame of the strategy's own callback (``on_market_event``, ``on_timestamp_batch``,
``on_fill``, ``on_order``, ``on_margin_call``, ``on_start``, ``on_end``, or the older
``on_market_data``) is on the traceback, the failure is the strategy's, and it becomes a
``StrategyError`` naming the callback, the bar time and the asset (read from the callback's
own argument: the event, fill, order or margin call). An exception with no strategy frame on
its traceback is tradeloop's own and is left as it is.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from tradeloop.clock import utc_datetime
from tradeloop.errors import StrategyError
from tradeloop.strategy.base import Strategy

__all__ = ["CALLBACKS", "strategy_error"]

CALLBACKS = (
    "on_market_event",
    "on_market_data",
    "on_timestamp_batch",
    "on_fill",
    "on_order",
    "on_margin_call",
    "on_start",
    "on_end",
)


def strategy_error(
    err: BaseException, strategy: Strategy, ts_ns: int | None
) -> StrategyError | None:
    """``err`` as the strategy's failure at bar time ``ts_ns``, or None if it is not one."""
    frame = _outermost_callback(err.__traceback__, strategy)
    if frame is None:
        return None
    callback = frame.f_code.co_name
    asset = _asset_of(frame)
    when = "at start" if ts_ns is None else f"at {utc_datetime(ts_ns).isoformat()}"
    where = f" for asset {asset}" if asset else ""
    return StrategyError(
        f"{type(strategy).__name__}.{callback} raised {type(err).__name__}: {err} ({when}"
        f"{where}). Fix: correct the strategy, then start the daemon again: this bar was "
        "not journaled, so the run resumes with it.",
        callback=callback,
        ts_ns=ts_ns,
        asset_id=asset,
    )


def _outermost_callback(tb: TracebackType | None, strategy: Strategy) -> Any:
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in CALLBACKS and frame.f_locals.get("self") is strategy:
            return frame
        tb = tb.tb_next
    return None


def _asset_of(frame: Any) -> str | None:
    """The asset of the callback's argument (an event, fill, order, margin call), whatever
    the strategy named it; None for a batch, on_start and on_end."""
    code = frame.f_code
    for name in code.co_varnames[1 : code.co_argcount]:
        asset = getattr(frame.f_locals.get(name), "asset_id", None)
        if isinstance(asset, str):
            return asset
    return None
