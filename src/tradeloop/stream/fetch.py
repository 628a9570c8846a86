"""Fetch a venue's history into a ``BarStore``: window by window, resumable, rate-limit aware.

The venue seam is the one gap backfill uses: ``load_venue(name).feed(settings).history(start_ns,
end_ns)`` (Binance pages klines, Alpaca follows ``next_page_token``). Rules:

- one request span per (asset, window) the store still lacks (``BarStore.plan``), in time order;
  each window is written as soon as it is in, so a killed fetch resumes where it stopped;
- a ``RateLimitError`` waits the venue's ``retry_after_s`` and asks again (up to
  ``max_wait_s``; longer bans raise); a ``ConnectionLostError`` (timeouts, 5xx, and 429s the
  adapter does not type) retries with doubling backoff; after ``retries`` attempts the error
  is raised, and every window written so far stays;
- the interval goes to the adapter as ``interval`` only when it is not the 1-minute default,
  so an adapter without intervals refuses it with its own ``ConfigError``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from tqdm import tqdm

from tradeloop.data.store import BarStore, FetchWindow, bars_frame
from tradeloop.errors import ConfigError, ConnectionLostError, RateLimitError
from tradeloop.events import BarMessage
from tradeloop.venue import Venue, VenueFeed, load_venue

__all__ = ["FetchReport", "fetch_history"]

_DEFAULT_INTERVAL = "1m"


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What one fetch did: windows planned and written, bars stored, retries spent."""

    windows: int
    bars: int
    retries: int


async def fetch_history(
    venue: str | Venue,
    assets: Sequence[str],
    out: str | Path,
    *,
    start_ns: int,
    end_ns: int,
    interval: str = _DEFAULT_INTERVAL,
    settings: Mapping[str, Any] | None = None,
    now_ns: int | None = None,
    window_days: int | None = None,
    retries: int = 5,
    backoff_s: float = 0.5,
    max_wait_s: float = 120.0,
    progress: bool | None = None,
) -> FetchReport:
    """Download the bars of ``assets`` opening in ``[start_ns, end_ns)`` into ``out``."""
    adapter = load_venue(venue) if isinstance(venue, str) else venue
    store = BarStore(out, venue=adapter.name, interval=interval, window_days=window_days)
    store.clean()
    now = time.time_ns() if now_ns is None else now_ns
    plan = store.plan(list(assets), start_ns, end_ns, now)
    log = structlog.get_logger().bind(venue=adapter.name, interval=interval, out=str(out))
    log.info("fetch_planned", windows=len(plan), assets=len(assets))
    base = dict(settings or {})
    if interval != _DEFAULT_INTERVAL:
        base["interval"] = interval
    show = sys.stderr.isatty() if progress is None else progress
    written = retried = 0
    bar = tqdm(
        total=len(plan), desc=f"fetch {adapter.name}", unit="window", disable=not show, leave=False
    )
    with bar:
        for window in plan:
            feed = _feed(adapter, base, window.asset_id, interval)
            messages, attempts = await _history(feed, window, retries, backoff_s, max_wait_s, log)
            retried += attempts
            rows = [
                (m.ts_ns, m.open, m.high, m.low, m.close, m.volume)
                for m in messages
                if isinstance(m, BarMessage) and m.asset_id == window.asset_id
            ]
            written += store.write(window, bars_frame(rows))
            bar.set_postfix_str(f"{window.asset_id} {window.path.stem} bars={written}")
            bar.update(1)
    log.info("fetch_done", windows=len(plan), bars=written, retries=retried)
    return FetchReport(windows=len(plan), bars=written, retries=retried)


def _feed(adapter: Venue, base: Mapping[str, Any], asset: str, interval: str) -> VenueFeed:
    try:
        return adapter.feed({**base, "symbols": [asset]})
    except ConfigError as err:
        if "interval" in base and "interval" in str(err):
            raise ConfigError(
                f"{adapter.name}: its history has no interval setting, so only "
                f"{_DEFAULT_INTERVAL} bars can be fetched, not {interval} ({err}). "
                f"Fix: fetch --interval {_DEFAULT_INTERVAL} and resample, e.g. with "
                "polars group_by_dynamic"
            ) from err
        raise


async def _history(
    feed: VenueFeed,
    window: FetchWindow,
    retries: int,
    backoff_s: float,
    max_wait_s: float,
    log: Any,
) -> tuple[list[Any], int]:
    """The window's messages and how many retries they took (``history``'s end is inclusive)."""
    for attempt in range(retries + 1):
        try:
            return await feed.history(window.start_ns, window.end_ns - 1), attempt
        except RateLimitError as err:
            if err.retry_after_s > max_wait_s:
                raise RateLimitError(
                    f"{err}: the venue asks to wait {err.retry_after_s:g} s, longer than "
                    f"max_wait_s={max_wait_s:g}. Fix: wait, then run the same fetch again "
                    "(what is written stays)",
                    retry_after_s=err.retry_after_s,
                ) from err
            wait_s, reason = err.retry_after_s, str(err)
            if attempt == retries:
                raise
        except ConnectionLostError as err:
            wait_s, reason = backoff_s * 2**attempt, str(err)
            if attempt == retries:
                raise ConnectionLostError(
                    f"{err} (after {retries} retries). Fix: run the same fetch again; the "
                    "windows already written are kept"
                ) from err
        log.warning(
            "fetch_retry",
            asset=window.asset_id,
            window=window.path.stem,
            attempt=attempt + 1,
            wait_s=wait_s,
            reason=reason,
        )
        await asyncio.sleep(wait_s)
    raise AssertionError("unreachable")  # the loop returns or raises
