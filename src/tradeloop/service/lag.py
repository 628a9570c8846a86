"""How fresh a daemon is, and whether it is ready: pure, times are passed in.

Four measures, each exported in ``/metrics`` and each a reason ``/readyz`` can give:

- ``feed_silent_s``: wall seconds since the feed last sent anything (since the start while it
  has sent nothing). A dead feed (refused connections, a stalled stream) shows here, even
  while the supervisor keeps retrying.
- ``bar_lag_s``: bar time between the newest bar the feed has delivered and the newest bar
  the strategy has handled: how far the run is behind the feed's own clock (a strategy
  slower than its bars falls behind here, whatever the bars' dates).
- ``bar_age_s``: wall seconds since the newest handled bar's time (for a venue, whose bars are
  stamped in real time, this is the lag behind the wall clock; for a replay it is large).
- ``loop_busy_s``: wall seconds since the daemon's event loop last ran its heartbeat: a
  strategy callback that holds the loop shows here (health is served from its own thread).

Rules: ready when bars have been handled, the run has not stopped, the feed spoke within
``stale_after_s``, the loop ran within ``stale_after_s``, and (if ``max_lag_s`` is set) the
run is no more than ``max_lag_s`` of bar time behind the feed. Alive (``/healthz``) unless
the loop has been held for ``2 × stale_after_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Freshness", "alive", "freshness", "not_ready"]

_NS = 1e9


@dataclass(frozen=True, slots=True)
class Freshness:
    feed_silent_s: float
    bar_lag_s: float | None  # None before the first bar
    bar_age_s: float | None
    loop_busy_s: float


def freshness(
    *,
    now_s: float,
    started_s: float,
    last_message_s: float | None,
    newest_delivered_ns: int | None,
    handled_ns: int | None,
    heartbeat_s: float,
) -> Freshness:
    """The measures at wall time ``now_s`` (all times in seconds since the epoch, bar times
    in UTC nanoseconds)."""
    spoke = last_message_s if last_message_s is not None else started_s
    lag = None
    if newest_delivered_ns is not None:
        lag = max(0.0, (newest_delivered_ns - (handled_ns or newest_delivered_ns)) / _NS)
    age = None if handled_ns is None else now_s - handled_ns / _NS
    return Freshness(
        feed_silent_s=max(0.0, now_s - spoke),
        bar_lag_s=lag,
        bar_age_s=age,
        loop_busy_s=max(0.0, now_s - heartbeat_s),
    )


def not_ready(
    fresh: Freshness,
    *,
    timestamps: int,
    stopped: bool,
    stale_after_s: float,
    max_lag_s: float | None = None,
) -> list[str]:
    """Why the daemon is not ready (empty: ready)."""
    reasons = []
    if stopped:
        reasons.append("stopped")
    if timestamps == 0:
        reasons.append("no bar handled yet")
    if fresh.feed_silent_s > stale_after_s:
        reasons.append(
            f"feed silent for {fresh.feed_silent_s:.1f} s (stale after {stale_after_s:g} s)"
        )
    if fresh.loop_busy_s > stale_after_s:
        reasons.append(f"event loop held for {fresh.loop_busy_s:.1f} s (a strategy callback?)")
    if max_lag_s is not None and fresh.bar_lag_s is not None and fresh.bar_lag_s > max_lag_s:
        reasons.append(
            f"{fresh.bar_lag_s:.0f} s of bar time behind the feed (max_lag_s {max_lag_s:g})"
        )
    return reasons


def alive(fresh: Freshness, *, stale_after_s: float) -> bool:
    """False once the event loop has been held for twice the feed's stale time: hung."""
    return fresh.loop_busy_s <= 2 * stale_after_s
