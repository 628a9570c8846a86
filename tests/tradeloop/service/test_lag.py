"""The freshness measures and readiness rules of ``service.lag``, on hand-picked times.

Times: the wall clock at 1,000.0 s, a daily bar stamped at 86,400 s per day (bar times in ns).
"""

from __future__ import annotations

from tradeloop.service.lag import Freshness, alive, freshness, not_ready

DAY_NS = 86_400 * 10**9


def test_freshness_measures_each_gap_from_the_times_it_is_given() -> None:
    fresh = freshness(
        now_s=1_000.0,
        started_s=900.0,
        last_message_s=997.5,
        newest_delivered_ns=12 * DAY_NS,
        handled_ns=2 * DAY_NS,
        heartbeat_s=999.75,
    )
    # 12 - 2 = 10 days of bar time behind; the handled bar is 1,000 - 172,800 s old
    assert fresh == Freshness(
        feed_silent_s=2.5, bar_lag_s=864_000.0, bar_age_s=-171_800.0, loop_busy_s=0.25
    )


def test_freshness_before_any_bar_counts_silence_from_the_start() -> None:
    fresh = freshness(
        now_s=1_000.0,
        started_s=990.0,
        last_message_s=None,
        newest_delivered_ns=None,
        handled_ns=None,
        heartbeat_s=1_000.0,
    )
    assert fresh == Freshness(feed_silent_s=10.0, bar_lag_s=None, bar_age_s=None, loop_busy_s=0.0)


def test_freshness_delivered_but_none_handled_yet_is_no_lag() -> None:
    fresh = freshness(
        now_s=1.0,
        started_s=0.0,
        last_message_s=1.0,
        newest_delivered_ns=DAY_NS,
        handled_ns=None,
        heartbeat_s=1.0,
    )
    assert fresh.bar_lag_s == 0.0


def test_not_ready_names_every_reason_that_applies() -> None:
    fresh = Freshness(feed_silent_s=31.0, bar_lag_s=864_001.0, bar_age_s=0.0, loop_busy_s=40.0)
    reasons = not_ready(fresh, timestamps=0, stopped=True, stale_after_s=30.0, max_lag_s=864_000)
    assert reasons == [
        "stopped",
        "no bar handled yet",
        "feed silent for 31.0 s (stale after 30 s)",
        "event loop held for 40.0 s (a strategy callback?)",
        "864001 s of bar time behind the feed (max_lag_s 864000)",
    ]


def test_not_ready_at_the_limits_is_ready() -> None:
    fresh = Freshness(feed_silent_s=30.0, bar_lag_s=864_000.0, bar_age_s=0.0, loop_busy_s=30.0)
    ready = not_ready(fresh, timestamps=1, stopped=False, stale_after_s=30.0, max_lag_s=864_000)
    assert ready == []
    # without max_lag_s, any lag is ready (the lag is still exported in /metrics)
    behind = Freshness(feed_silent_s=0.0, bar_lag_s=1e9, bar_age_s=0.0, loop_busy_s=0.0)
    assert not_ready(behind, timestamps=1, stopped=False, stale_after_s=30.0) == []


def test_alive_until_the_loop_is_held_twice_the_stale_time() -> None:
    held = Freshness(feed_silent_s=0.0, bar_lag_s=None, bar_age_s=None, loop_busy_s=60.0)
    assert alive(held, stale_after_s=30.0)
    hung = Freshness(feed_silent_s=0.0, bar_lag_s=None, bar_age_s=None, loop_busy_s=60.01)
    assert not alive(hung, stale_after_s=30.0)
