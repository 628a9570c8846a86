"""What looks like a mistake in a run's inputs, said before the run starts. Pure.

None of these is an error (each can be meant), but each one, unsaid, gives a run that does
nothing or the wrong thing with no hint why. Each is an ``InputWarning`` saying what was
found and what it does:

- a signal that is NaN in every bar: every comparison on it is False, so nothing trades;
- a context series that starts after the last bar: the strategy sees ``None`` throughout;
- a strategy method named like a callback of another framework (``on_bar``, ``next``,
  ``handle_data``) when no per-bar callback is defined, or one a letter or two away from a
  tradeloop callback (``on_markt_event``): tradeloop never calls it.

(Capitalised price columns such as ``Open`` are mapped to ``open`` with a
``ColumnsMappedWarning``: see ``data.columns``.)
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from tradeloop.clock import utc_datetime
from tradeloop.data.context import Context
from tradeloop.strategy.base import Strategy

__all__ = ["InputWarning", "check_callbacks", "check_context", "check_signals"]

CALLBACKS = (
    "on_start",
    "on_market_event",
    "on_timestamp_batch",
    "on_fill",
    "on_order",
    "on_margin_call",
    "on_end",
)
_PER_BAR = ("on_market_event", "on_timestamp_batch", "on_market_data")
_KNOWN = (*CALLBACKS, "on_market_data")  # the older spelling still works
# other frameworks' per-bar callbacks (backtrader, zipline, QuantConnect, vectorised tools)
_FOREIGN = ("on_bar", "on_bars", "next", "on_data", "handle_data", "on_tick", "on_candle")


class InputWarning(UserWarning):
    """An input that is allowed but almost certainly not meant (see ``runtime.preflight``)."""


def check_signals(signals: Mapping[str, npt.NDArray[np.float64]], where: str = "data") -> None:
    """Warn for each signal column that holds no number at all."""
    for name, values in signals.items():
        if values.size and np.isnan(values).all():
            _warn(
                f"{where}: signal {name!r} is NaN in every one of its {values.size} bars, so "
                "every comparison on it is False and nothing it drives will trade. Fix: check "
                "the column (a failed join or a renamed feature?)"
            )


def check_context(context: Context, first_ns: int, last_ns: int) -> None:
    """Warn for each context series with no value at or before the last bar."""
    for name in context.names:
        times, _ = context.series_points(name)
        if times and times[0] > last_ns:
            _warn(
                f"context {name!r} starts at {utc_datetime(times[0])}, after the last bar "
                f"({utc_datetime(last_ns)}): the strategy sees None for it at every bar. Fix: "
                "check its dates (the bars run from "
                f"{utc_datetime(first_ns)})"
            )


def check_callbacks(strategy: Strategy) -> None:
    """Warn for methods tradeloop will never call that look meant as callbacks."""
    kind = type(strategy)
    own = {name for klass in kind.__mro__ if klass not in Strategy.__mro__ for name in vars(klass)}
    per_bar = any(getattr(kind, n, None) is not getattr(Strategy, n, None) for n in _PER_BAR)
    for name in sorted(own):
        if name in _KNOWN or name.startswith("_") or not callable(getattr(kind, name)):
            continue
        close = difflib.get_close_matches(name, CALLBACKS, n=1, cutoff=0.85)
        if close:
            meant = close[0]
        elif name in _FOREIGN and not per_bar:
            meant = "on_market_event(event, context) or on_timestamp_batch(batch, context)"
        else:
            continue
        _warn(
            f"{kind.__name__}.{name} is never called by tradeloop"
            f"{'' if per_bar else ', and no per-bar callback is defined: nothing will trade'}."
            f" Fix: name it {meant}"
        )


def _warn(message: str) -> None:
    warnings.warn(message, InputWarning, stacklevel=3)
