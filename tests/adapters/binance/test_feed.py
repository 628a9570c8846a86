"""BinanceFeed against the fake venue: closed klines only, pings answered, and every way a
connection ends (drop, stall, serverShutdown, the 24 h limit) recovered by SupervisedFeed
with a klines backfill: each (symbol, bar) delivered exactly once, none missing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from adapters.binance import VENUE, BinanceFeed
from tests.adapters.binance.fake_binance import MINUTE_MS, T0_MS, FakeBinance
from tradeloop.errors import ConfigError, ConnectionLostError, RateLimitError
from tradeloop.events import BarMessage, Reconnected
from tradeloop.stream.supervisor import SupervisedFeed


def feed(fake: FakeBinance, **settings: Any) -> BinanceFeed:
    return VENUE.feed({**fake.settings, **settings})


async def collect(stream: Any, want: int, timeout_s: float = 30.0) -> list[Any]:
    """Messages until ``want`` distinct (symbol, bar) arrived (markers and repeats kept);
    the timeout only bounds a hang (a loaded shared machine once needed more than 10 s)."""
    out: list[Any] = []
    seen: set[tuple[str, int]] = set()
    async with asyncio.timeout(timeout_s):
        async for message in stream:
            out.append(message)
            if isinstance(message, BarMessage):
                seen.add((message.asset_id, message.ts_ns))
                if len(seen) >= want:
                    break
    return out


def keys(messages: list[Any]) -> list[tuple[str, int]]:
    return [(m.asset_id, m.ts_ns) for m in messages if isinstance(m, BarMessage)]


def as_handled(messages: list[Any]) -> list[tuple[str, int]]:
    """The bars a runtime hands on, by LiveRuntime's rule for ``Reconnected``: a timestamp is
    handled once a later one starts; on a reconnect the unfinished timestamp is dropped
    (it comes again, whole) and bars of handled timestamps are skipped."""
    handled: list[tuple[str, int]] = []
    pending: list[tuple[str, int]] = []
    last_handled = -1
    for message in messages:
        if isinstance(message, Reconnected):
            pending = []
        elif isinstance(message, BarMessage) and message.ts_ns > last_handled:
            if pending and message.ts_ns > pending[0][1]:
                handled += pending
                last_handled, pending = pending[0][1], []
            pending.append((message.asset_id, message.ts_ns))
    return handled + pending


def every_bar(fake: FakeBinance, first: int, last: int) -> set[tuple[str, int]]:
    return {
        (s, (fake.t0_ms + k * MINUTE_MS) * 1_000_000)
        for k in range(first, last + 1)
        for s in fake.symbols
    }


async def supervised_run(fake: FakeBinance, *, stale_after_s: float = 5.0) -> list[Any]:
    supervised = SupervisedFeed(
        feed(fake), stale_after_s=stale_after_s, base_backoff_s=0.05, max_backoff_s=0.1, seed=1
    )
    fake.start_clock()
    stream = supervised.messages()
    try:
        return await collect(stream, want=len(fake.symbols) * fake.n_bars)
    finally:
        await stream.aclose()


async def test_feed_yields_closed_klines_only_in_order(fake: FakeBinance) -> None:
    fake.n_bars = 6
    stream = feed(fake).messages()
    fake.start_clock()
    messages = await collect(stream, want=12)
    await stream.aclose()
    # the fake sends a forming update of each bar before its closed kline: none may leak
    assert keys(messages) == sorted(every_bar(fake, 0, 5), key=lambda k: (k[1], k[0]))
    btc = [m for m in messages if m.asset_id == "BTCUSDT"]
    # bar 2 of BTCUSDT (base 100 + 2): o=102, h=104, l=101, c=103, v=12
    assert (btc[2].open, btc[2].high, btc[2].low, btc[2].close, btc[2].volume) == (
        102.0,
        104.0,
        101.0,
        103.0,
        12.0,
    )


async def test_feed_answers_server_pings_and_keeps_the_connection(fake: FakeBinance) -> None:
    # the fake pings every 30 ms and cuts a client that did not pong in between
    fake.ping_interval_s, fake.n_bars, fake.bar_interval_s = 0.03, 15, 0.03
    stream = feed(fake).messages()
    fake.start_clock()
    messages = await collect(stream, want=30)
    await stream.aclose()
    assert len(keys(messages)) == 30
    assert fake.pongs >= 8  # ~0.45 s of pings at 30 ms, every one answered
    assert fake.stream_connections == 1


async def test_supervised_feed_drop_is_backfilled_without_gap_or_duplicate(
    fake: FakeBinance,
) -> None:
    fake.drop_at = 10  # several bars pass while the client reconnects
    messages = await supervised_run(fake)
    handled = as_handled(messages)
    assert len(handled) == len(set(handled))  # no duplicate
    assert set(handled) == every_bar(fake, 0, fake.n_bars - 1)  # no gap
    assert any(isinstance(m, Reconnected) for m in messages)
    assert fake.stream_connections == 2
    assert fake.kline_requests  # the gap came from GET /api/v3/klines
    assert {r["symbol"] for r in fake.kline_requests} == set(fake.symbols)


async def test_supervised_feed_silent_stall_reconnects_and_backfills(fake: FakeBinance) -> None:
    fake.stall_at = 8  # the socket stays open, nothing more arrives on it
    messages = await supervised_run(fake, stale_after_s=0.15)
    handled = as_handled(messages)
    assert len(handled) == len(set(handled))
    assert set(handled) == every_bar(fake, 0, fake.n_bars - 1)
    assert fake.stream_connections == 2


async def test_supervised_feed_server_shutdown_event_reconnects(fake: FakeBinance) -> None:
    fake.shutdown_at = 5  # the notice comes; the server keeps the socket open for now
    messages = await supervised_run(fake)
    handled = as_handled(messages)
    assert len(handled) == len(set(handled))
    assert set(handled) == every_bar(fake, 0, fake.n_bars - 1)
    assert fake.stream_connections == 2


async def test_feed_reconnects_before_the_24h_limit(fake: FakeBinance) -> None:
    # a connection may live max_connection_age_s (23.5 h by default; 0.2 s here)
    supervised = SupervisedFeed(
        feed(fake, max_connection_age_s=0.2), base_backoff_s=0.02, max_backoff_s=0.05, seed=1
    )
    fake.start_clock()
    stream = supervised.messages()
    messages = await collect(stream, want=len(fake.symbols) * fake.n_bars)
    await stream.aclose()
    handled = as_handled(messages)
    assert set(handled) == every_bar(fake, 0, fake.n_bars - 1)
    assert len(handled) == len(set(handled))
    assert fake.stream_connections >= 3


async def test_feed_malformed_frame_is_skipped_and_counted(fake: FakeBinance) -> None:
    fake.n_bars, fake.malformed_at = 5, 2
    binance = feed(fake)
    stream = binance.messages()
    fake.start_clock()
    messages = await collect(stream, want=9)
    await stream.aclose()
    assert ("BTCUSDT", (T0_MS + 2 * MINUTE_MS) * 1_000_000) not in keys(messages)
    assert binance.skipped == 1
    assert "k.c is 'not-a-price'" in binance.last_error


async def test_history_pages_through_klines_and_drops_the_forming_one(fake: FakeBinance) -> None:
    # bars 0..11 closed, bar 12 forming now (its close time is in the future)
    fake.published = 12
    fake.t0_ms = (time.time_ns() // 1_000_000 // MINUTE_MS - 12) * MINUTE_MS
    binance = feed(fake, klines_limit=5)
    bars = await binance.history(fake.t0_ms * 1_000_000, None)
    assert set(keys(bars)) == every_bar(fake, 0, 11)
    assert keys(bars) == sorted(keys(bars), key=lambda k: (k[1], k[0]))
    # 13 rows per symbol at 5 a page → 3 pages each
    assert len(fake.kline_requests) == 6
    ranged = await binance.history(
        (fake.t0_ms + 3 * MINUTE_MS) * 1_000_000, (fake.t0_ms + 4 * MINUTE_MS) * 1_000_000
    )
    assert set(keys(ranged)) == every_bar(fake, 3, 4)


async def test_supervised_feed_server_side_24h_cut_is_backfilled(fake: FakeBinance) -> None:
    fake.max_connection_age_s = 0.25  # the venue cuts the connection (24 h, scaled down)
    messages = await supervised_run(fake)
    handled = as_handled(messages)
    assert len(handled) == len(set(handled))
    assert set(handled) == every_bar(fake, 0, fake.n_bars - 1)
    assert fake.stream_connections >= 2


async def test_history_errors_go_through_the_error_map(fake: FakeBinance) -> None:
    binance = feed(fake)
    fake.inject(
        "GET", "/api/v3/klines", 429, -1003, "Too many requests.", headers={"Retry-After": "7"}
    )
    with pytest.raises(RateLimitError) as limited:
        await binance.history(fake.t0_ms * 1_000_000, None)
    assert limited.value.retry_after_s == 7.0
    fake.inject("GET", "/api/v3/klines", 503, text="Service Unavailable")
    with pytest.raises(ConnectionLostError, match="HTTP 503"):  # SupervisedFeed retries it
        await binance.history(fake.t0_ms * 1_000_000, None)
    fake.inject("GET", "/api/v3/klines", 400, -1121, "Invalid symbol.")
    with pytest.raises(ConfigError, match="Fix"):
        await binance.history(fake.t0_ms * 1_000_000, None)
