"""AlpacaFeed against the fake Alpaca on 127.0.0.1: handshake, corrections, drops and backfill
through SupervisedFeed, stalls, slow or missing auth, 406 back-off, fatal auth errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV, AlpacaSettings
from adapters.alpaca.errors import AlpacaAuthError, AuthTimeoutError
from adapters.alpaca.feed import AlpacaFeed
from structlog.testing import capture_logs

from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET, FakeAlpaca, minute_ns
from tradeloop.events import BarMessage, Message, Reconnected
from tradeloop.stream.supervisor import SupervisedFeed

ENV = {KEY_ID_ENV: KEY_ID, SECRET_ENV: SECRET}


def feed_for(fake: FakeAlpaca, env: dict[str, str] | None = None, **options: Any) -> AlpacaFeed:
    table = fake.settings(**{"correction_grace_s": 0.05, **options})
    return AlpacaFeed(AlpacaSettings.from_mapping(table, env or ENV))


async def take(stream: AsyncIterator[Any], n: int, timeout_s: float = 5.0) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout_s):
        while len(out) < n:
            out.append(await anext(stream))
    return out


async def when(event: asyncio.Event, action: Callable[[], Awaitable[None]]) -> None:
    await asyncio.wait_for(event.wait(), 5.0)
    await action()


async def bars_of(stream: AsyncIterator[Any], n: int, timeout_s: float = 5.0) -> list[Any]:
    """Messages up to and including the ``n``-th bar."""
    out: list[Any] = []
    async with asyncio.timeout(timeout_s):
        while len(keys(out)) < n:
            out.append(await anext(stream))
    return out


def keys(messages: list[Any]) -> list[tuple[int, str]]:
    return [(m.ts_ns, m.asset_id) for m in messages if isinstance(m, BarMessage)]


async def test_feed_authenticates_subscribes_and_yields_a_batched_minute(
    fake: FakeAlpaca,
) -> None:
    stream = feed_for(fake).messages()
    publisher = asyncio.create_task(when(fake.subscribed, lambda: fake.publish(0)))
    bars = await take(stream, 2)
    await publisher
    await stream.aclose()  # type: ignore[attr-defined]
    assert fake.auth_messages == [{"action": "auth", "key": KEY_ID, "secret": SECRET}]
    assert fake.subscriptions == [
        {"action": "subscribe", "bars": ["AAPL", "SPY"], "updatedBars": ["AAPL", "SPY"]}
    ]
    spy = fake.bar("SPY", 0)
    assert bars[1] == BarMessage(
        "SPY", minute_ns(0), spy["o"], spy["h"], spy["l"], spy["c"], float(spy["v"])
    )
    assert keys(bars) == [(minute_ns(0), "AAPL"), (minute_ns(0), "SPY")]


async def test_feed_publishes_a_correction_within_the_grace_and_counts_a_later_one(
    fake: FakeAlpaca,
) -> None:
    feed = feed_for(fake, correction_grace_s=0.3)
    stream = feed.messages()

    async def market() -> None:
        await fake.publish(0)
        await fake.correct(0, "SPY", bump=0.5)  # lands inside the 0.3 s hold

    publisher = asyncio.create_task(when(fake.subscribed, market))
    first = await take(stream, 2)
    await publisher
    corrected = fake.bar("SPY", 0, bump=0.5)
    assert [(b.asset_id, b.close, b.high) for b in first] == [
        ("AAPL", fake.bar("AAPL", 0)["c"], fake.bar("AAPL", 0)["h"]),
        ("SPY", corrected["c"], corrected["h"]),  # the "b" values were never published
    ]
    with capture_logs() as logs:
        await fake.correct(0, "AAPL", bump=0.7)  # minute 0 was published: too late
        await fake.publish(1)
        second = await take(stream, 2)
    await stream.aclose()  # type: ignore[attr-defined]
    assert keys(second) == [(minute_ns(1), "AAPL"), (minute_ns(1), "SPY")]
    assert feed.late_corrections == 1
    assert feed.hold.applied == 1
    late = [line for line in logs if line["event"] == "bar_correction_late"]
    assert late == [
        {
            "event": "bar_correction_late",
            "log_level": "warning",
            "component": "alpaca_feed",
            "feed": "iex",
            "asset": "AAPL",
            "ts_ns": minute_ns(0),
            "close": fake.bar("AAPL", 0, bump=0.7)["c"],
            "late_corrections": 1,
        }
    ]


async def test_a_drop_is_backfilled_from_bars_rest_with_no_gap_and_no_duplicate(
    fake: FakeAlpaca,
) -> None:
    feed = feed_for(fake)
    supervised = SupervisedFeed(feed, stale_after_s=5.0, base_backoff_s=0.05, seed=1)
    stream = supervised.messages()

    async def market() -> None:
        await asyncio.wait_for(fake.subscribed.wait(), 5.0)
        for i in range(3):
            await fake.publish(i)
            await asyncio.sleep(0.1)  # past the grace: each minute goes out on its own
        await fake.drop_data_clients()
        for i in range(3, 6):
            await fake.publish(i)  # nobody listening: only bars REST has these
        await when(fake.subscribed, lambda: fake.publish(6))
        await asyncio.sleep(0.1)
        await fake.publish(7)

    publisher = asyncio.create_task(market())
    got: list[Message | Reconnected] = []
    async with asyncio.timeout(10.0):
        while not got or keys(got)[-1] != (minute_ns(7), "SPY"):
            got.append(await anext(stream))
    await publisher
    await stream.aclose()  # type: ignore[attr-defined]
    cut = got.index(Reconnected(1))
    before, after = keys(got[:cut]), keys(got[cut + 1 :])
    assert before == [(minute_ns(i), s) for i in range(3) for s in ("AAPL", "SPY")]
    # after a reconnect the supervisor re-sends the last timestamp whole (the runtime drops a
    # half-received one and skips one it handled), then every minute once, in order
    assert after == [(minute_ns(i), s) for i in range(2, 8) for s in ("AAPL", "SPY")]
    assert sum(isinstance(m, Reconnected) for m in got) == 1
    assert supervised.reconnects == 1
    assert supervised.backfilled > 0
    assert fake.data_connections == 2
    # one history call from the last bar delivered up to the first live one, paged by 3
    starts = {r["start"] for r in fake.bar_requests}
    assert starts == {"2024-03-04T14:32:00Z"}
    assert {r["end"] for r in fake.bar_requests} == {"2024-03-04T14:36:00Z"}
    assert len(fake.bar_requests) == 4  # 10 rows in pages of 3
    assert "page_token" in fake.bar_requests[1]
    assert {(r["timeframe"], r["feed"], r["symbols"]) for r in fake.bar_requests} == {
        ("1Min", "iex", "AAPL,SPY")
    }


async def test_a_silent_stream_is_treated_as_lost_and_reconnected(fake: FakeAlpaca) -> None:
    fake.stall = True
    supervised = SupervisedFeed(feed_for(fake), stale_after_s=0.3, base_backoff_s=0.01, seed=1)
    stream = supervised.messages()

    async def market() -> None:
        await fake.wait_for(lambda: fake.subscriptions)
        fake.stall = False
        await when(fake.subscribed, lambda: fake.publish(0))

    publisher = asyncio.create_task(market())
    got = await take(stream, 3)
    await publisher
    await stream.aclose()  # type: ignore[attr-defined]
    assert got[0] == Reconnected(1)
    assert keys(got[1:]) == [(minute_ns(0), "AAPL"), (minute_ns(0), "SPY")]
    assert supervised.stalls == 1
    assert fake.data_connections == 2


async def test_auth_answered_late_but_within_the_timeout_connects(fake: FakeAlpaca) -> None:
    fake.auth_delay_s = 0.3
    stream = feed_for(fake, auth_timeout_s=2.0).messages()
    publisher = asyncio.create_task(when(fake.subscribed, lambda: fake.publish(0)))
    assert len(await take(stream, 2)) == 2
    await publisher
    await stream.aclose()  # type: ignore[attr-defined]
    assert fake.data_connections == 1


async def test_auth_never_answered_times_out_as_a_lost_connection(fake: FakeAlpaca) -> None:
    fake.auth_never = True
    stream = feed_for(fake, auth_timeout_s=0.2).messages()
    with pytest.raises(AuthTimeoutError, match=r"no authentication answer within 0.2 s"):
        await anext(stream)


async def test_server_auth_timeout_404_reconnects_through_the_supervisor(fake: FakeAlpaca) -> None:
    fake.auth_error = 404
    supervised = SupervisedFeed(feed_for(fake), stale_after_s=5.0, base_backoff_s=0.01, seed=1)
    stream = supervised.messages()

    async def market() -> None:
        await fake.wait_for(lambda: fake.data_connections >= 2)
        fake.auth_error = None
        await when(fake.subscribed, lambda: fake.publish(0))

    publisher = asyncio.create_task(market())
    got = await bars_of(stream, 2)
    await publisher
    await stream.aclose()  # type: ignore[attr-defined]
    assert isinstance(got[0], Reconnected)
    assert keys(got)[-2:] == [(minute_ns(0), "AAPL"), (minute_ns(0), "SPY")]
    assert supervised.reconnects >= 1


async def test_wrong_keys_are_fatal_with_a_fix_hint_and_not_retried(fake: FakeAlpaca) -> None:
    env = {KEY_ID_ENV: KEY_ID, SECRET_ENV: "wrong-secret-value-123"}
    supervised = SupervisedFeed(feed_for(fake, env), base_backoff_s=0.01)
    with pytest.raises(AlpacaAuthError, match=r"402.*APCA_API_KEY_ID / APCA_API_SECRET_KEY"):
        await anext(supervised.messages())
    assert fake.data_connections == 1


async def test_connection_limit_406_backs_off_longer_each_time(fake: FakeAlpaca) -> None:
    fake.refuse_406 = 2
    feed = feed_for(fake, connection_limit_backoff_s=0.25)
    supervised = SupervisedFeed(feed, stale_after_s=5.0, base_backoff_s=0.01, seed=1)
    stream = supervised.messages()
    publisher = asyncio.create_task(
        when(fake.subscribed, lambda: fake.publish(0)),
    )
    got = await take(stream, 4)
    await publisher
    await stream.aclose()  # type: ignore[attr-defined]
    assert got == [Reconnected(1), Reconnected(2), *got[2:]]
    assert keys(got) == [(minute_ns(0), "AAPL"), (minute_ns(0), "SPY")]
    assert feed.limit_hits == 2
    assert fake.data_connections == 3
    first, second, third = fake.connection_times
    assert second - first >= 0.25  # not the supervisor's 10 ms: the 406 back-off
    assert third - second >= 0.5  # doubled


async def test_history_pages_through_bars_rest_and_sorts_by_time(fake: FakeAlpaca) -> None:
    for i in range(4):
        await fake.publish(i)
    history = await feed_for(fake).history(minute_ns(1), minute_ns(3))
    assert keys(history) == [(minute_ns(i), s) for i in (1, 2, 3) for s in ("AAPL", "SPY")]
    assert len(fake.bar_requests) == 2
    assert fake.bar_requests[0]["start"] == "2024-03-04T14:31:00Z"
    assert fake.bar_requests[0]["end"] == "2024-03-04T14:33:00Z"
