"""A daemon run that ends on a strategy's exception, and the daemon's exit codes.

When a strategy callback raises, the daemon logs one structured event (``strategy_failed``:
the callback, the bar time, the asset, the exception and its traceback), writes its state
and summary as of the last journaled timestamp (a paper book is rebuilt from the journal: the
failed timestamp was never journaled, so its half-done work is not reported), and exits with
``EXIT_STRATEGY``, which the shipped restart policies do not restart on. To resume: fix the
strategy and start the daemon again; it carries on with the bar that failed.

Exit codes, chosen so a restart policy never loops on a run a restart cannot fix (the
systemd unit lists 70 and 78 in ``RestartPreventExitStatus``):

    0   stopped: SIGTERM/SIGINT, or the stream ended
    1   crashed (an unexpected error): a restart may help
    70  the strategy raised (EX_SOFTWARE): fix it, then start again
    78  refused (EX_CONFIG): the config, or a state_dir that cannot be trusted or written
"""

from __future__ import annotations

import traceback
from typing import Any

from tradeloop.clock import utc_datetime
from tradeloop.errors import ConfigError, StateError, StrategyError, TradeloopError

__all__ = ["EXIT_REFUSED", "EXIT_STRATEGY", "exit_code", "failure_event"]

EXIT_STRATEGY = 70
EXIT_REFUSED = 78


def exit_code(err: TradeloopError) -> int:
    """The daemon's exit code for a run that ended with ``err``."""
    if isinstance(err, StrategyError):
        return EXIT_STRATEGY
    if isinstance(err, ConfigError | StateError):
        return EXIT_REFUSED
    return 1


def failure_event(err: StrategyError, cause: BaseException) -> dict[str, Any]:
    """The fields of the ``strategy_failed`` log event (and of the summary's ``error``):
    where (``err``) and what (``cause``, the strategy's own exception)."""
    return {
        "callback": err.callback,
        "ts": None if err.ts_ns is None else utc_datetime(err.ts_ns).isoformat(),
        "ts_ns": err.ts_ns,
        "asset": err.asset_id,
        "error": f"{type(cause).__name__}: {cause}",
        "traceback": "".join(traceback.format_exception(cause)),
        "exit_code": EXIT_STRATEGY,
    }
