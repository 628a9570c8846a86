"""Feed supervision: reconnect with jittered backoff, treat a silent feed as dead, backfill
what a drop missed, and never deliver an (asset, bar time) twice.

``SupervisedFeed`` wraps anything with ``messages()`` (a WebSocketFeed). When the stream
drops (``ConnectionLostError``) or sends nothing for ``stale_after_s`` (a bar was due), it
logs, waits ``min(max_backoff_s, base_backoff_s × 2^attempt)`` with ±50 % jitter, connects
again and yields a ``Reconnected`` marker first, so the runtime drops a half-received
timestamp and skips what it has already handled.

Backfill (feeds with ``history(start_ns, end_ns)``): after reconnecting (or at the first
connection when ``backfill_from`` is given, e.g. a daemon restart), it waits for the first
live bar, asks the history for everything from the last bar time it delivered up to that
bar's time, and delivers the history before the live stream. Subscribing first and then
backfilling up to the first live bar leaves no gap; the overlap is removed by
de-duplicating on (asset, bar time). When no live bar comes within ``stale_after_s`` (the
market went quiet: a session's close), the gap is fetched up to now instead, so the bars the
drop missed are not held back until the next session. The stream ending normally ends the
supervision.

A rate limit (``RateLimitError``: Binance 429/418, Alpaca 429) during a backfill or a
connect does not end it either: it holds for the venue's ``retry_after_s`` (at least the
backoff), logged as ``feed_rate_limited`` and counted, then tries again, backfill included.
Any other adapter error (an unreadable history page) is a reconnect with backoff, logged
as ``feed_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from typing import Protocol

import structlog

from tradeloop.errors import AdapterError, ConnectionLostError, RateLimitError
from tradeloop.events import BarBatchMessage, BarMessage, Message, Reconnected

__all__ = ["SupervisedFeed"]


class _Feed(Protocol):
    def messages(self) -> AsyncIterator[Message]: ...


class _Delivered:
    """Which (asset, bar time) keys went out recently: enough to drop a backfill's overlap."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        # per bar time: a set of asset ids, or the one batch's list of them as it came (a
        # stream of whole timestamps, the usual case, then never hashes its 500 ids a frame;
        # the list becomes a set only when a second message for that time arrives)
        self._by_ts: dict[int, set[str] | list[str]] = {}

    def clear(self) -> None:
        self._by_ts.clear()

    def fresh(self, message: Message) -> bool:
        """False for a bar (or a whole batch) already delivered; remembers the new ones."""
        if isinstance(message, BarMessage):
            seen = self._at(message.ts_ns)
            if message.asset_id in seen:
                return False
            seen.add(message.asset_id)
        elif isinstance(message, BarBatchMessage):
            if message.asset_ids and message.ts_ns not in self._by_ts:
                self._add(message.ts_ns, message.asset_ids)
                return True
            seen = self._at(message.ts_ns)
            if seen.issuperset(message.asset_ids):
                return False
            seen.update(message.asset_ids)
        return True

    def _at(self, ts_ns: int) -> set[str]:
        seen = self._by_ts.get(ts_ns)
        if isinstance(seen, list):
            seen = self._by_ts[ts_ns] = set(seen)
        elif seen is None:
            seen = set()
            self._add(ts_ns, seen)
        return seen

    def _add(self, ts_ns: int, seen: set[str] | list[str]) -> None:
        self._by_ts[ts_ns] = seen
        if len(self._by_ts) > self.keep:
            del self._by_ts[min(self._by_ts)]


class SupervisedFeed:
    def __init__(
        self,
        feed: _Feed,
        *,
        stale_after_s: float = 30.0,
        base_backoff_s: float = 0.25,
        max_backoff_s: float = 15.0,
        max_attempts: int | None = None,
        backfill_from: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.feed = feed
        self.stale_after_s = stale_after_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        self.reconnects = 0
        self.stalls = 0
        self.backfilled = 0  # messages delivered from the history call
        self.duplicates = 0  # bars dropped because they had been delivered already
        self.last_message_s: float | None = None  # wall time of the feed's last message
        self.rate_limited = 0  # holds for a venue's Retry-After
        self.errors = 0  # other adapter errors, each a reconnect
        self._last_bar_ns = backfill_from
        self._backfill_now = backfill_from is not None
        self._delivered = _Delivered()
        self._waiting: asyncio.Future[Message] | None = None  # a read the backfill left open
        self._random = random.Random(seed)
        self._log = structlog.get_logger().bind(component="feed_supervisor")

    @property
    def newest_bar_ns(self) -> int | None:
        """The newest bar time delivered so far (the feed's clock, for lag)."""
        return self._last_bar_ns

    @property
    def skipped(self) -> int:
        return int(getattr(self.feed, "skipped", 0))

    async def messages(self) -> AsyncIterator[Message | Reconnected]:
        attempt = 0
        while True:
            stream = self.feed.messages().__aiter__()
            try:
                if attempt:
                    yield Reconnected(attempt)
                    self._delivered.clear()  # the runtime dropped the half-received timestamp
                backlog: list[Message] = []
                ended = False
                if self._backfill_now and hasattr(self.feed, "history"):
                    # subscribe first (the first live bar), then fetch the gap up to it
                    live, ended, first_bar = await self._first_live_bar(stream)
                    backlog = [*await self._history(first_bar), *live]
                self._backfill_now = True  # every later connection backfills
                for old in backlog:
                    if self._deliverable(old):
                        yield old
                if ended:
                    return
                while True:
                    message = await self._next(stream)
                    if message is None:
                        return
                    attempt = 0
                    if self._deliverable(message):
                        yield message
            except AdapterError as err:
                attempt += 1
                self.reconnects += 1
                if (
                    isinstance(err, ConnectionLostError)
                    and self.max_attempts is not None
                    and attempt > self.max_attempts
                ):
                    raise
                delay = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempt - 1))
                delay *= 0.5 + self._random.random()
                if isinstance(err, RateLimitError):
                    self.rate_limited += 1
                    delay = max(delay, err.retry_after_s)
                    event = "feed_rate_limited"
                elif isinstance(err, ConnectionLostError):
                    event = "feed_reconnecting"
                else:
                    self.errors += 1
                    event = "feed_error"
                self._log.warning(
                    event,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    reason=str(err),
                    error_type=type(err).__name__,
                )
                # let go of the failed connection first: held open through the backoff, its
                # unread frames fill the buffers and its closing handshake stalls
                await self._let_go(stream)
                await asyncio.sleep(delay)
            finally:
                await self._let_go(stream)

    async def _let_go(self, stream: AsyncIterator[Message]) -> None:
        """Close a connection, and the read the backfill may have left waiting on it."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.cancel()  # no-op once done; awaiting retrieves its outcome either way
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waiting
        await _close(stream)

    async def _first_live_bar(
        self, stream: AsyncIterator[Message]
    ) -> tuple[list[Message], bool, int | None]:
        """The messages up to the first live bar, whether the stream ended, and that bar's
        time: where the backfill stops. A market that stays quiet for ``stale_after_s`` after
        the subscription (a session's close, a weekend) is not a dead feed here: the gap is
        fetched up to now (None), so the bars the drop missed are handled without waiting
        for the next session's first bar; the overlap with later live bars is dropped.

        The read that is still waiting is kept (``_waiting``) for the live loop: cancelling
        it would close the feed's generator, and the stream with it."""
        live: list[Message] = []
        deadline = asyncio.get_running_loop().time() + self.stale_after_s
        while True:
            read = asyncio.ensure_future(anext(stream))
            read.add_done_callback(_outcome_seen)  # however this wait ends, nothing is lost
            left = deadline - asyncio.get_running_loop().time()
            try:
                done, _ = await asyncio.wait({read}, timeout=max(0.0, left))
            except BaseException:  # cancelled (the daemon stops): the read goes too
                read.cancel()
                raise
            if not done:
                self._waiting = read
                self._log.info("feed_quiet_after_reconnect", waited_s=self.stale_after_s)
                return live, False, None
            try:
                message = read.result()
            except StopAsyncIteration:
                return live, True, None
            self.last_message_s = time.time()
            live.append(message)
            if isinstance(message, BarMessage | BarBatchMessage):
                return live, False, message.ts_ns

    async def _next(self, stream: AsyncIterator[Message]) -> Message | None:
        """The next message, None when the stream ended; a silent stream is a lost one."""
        waiting, self._waiting = self._waiting, None
        try:
            # a timeout scope, not ``wait_for``: on 3.11 that wraps each read in a new task,
            # one loop iteration per message, so a feed with frames waiting could never read
            # ahead of a busy runtime (and its lag stayed invisible)
            async with asyncio.timeout(self.stale_after_s):
                message = await (waiting if waiting is not None else anext(stream))
            self.last_message_s = time.time()
            return message
        except TimeoutError:
            self.stalls += 1
            raise ConnectionLostError(
                f"no message for {self.stale_after_s:g} s: the feed is stale"
            ) from None
        except StopAsyncIteration:
            return None

    async def _history(self, until_ns: int | None) -> list[Message]:
        if self._last_bar_ns is None:
            return []
        if until_ns is not None and until_ns < self._last_bar_ns:
            return []  # the stream restarted from the beginning: nothing was missed
        messages: list[Message] = await self.feed.history(  # type: ignore[attr-defined]
            self._last_bar_ns, until_ns
        )
        self.backfilled += len(messages)
        self._log.info(
            "feed_backfilled", start_ns=self._last_bar_ns, end_ns=until_ns, messages=len(messages)
        )
        return messages

    def _deliverable(self, message: Message) -> bool:
        if not isinstance(message, BarMessage | BarBatchMessage):
            return True
        if not self._delivered.fresh(message):
            self.duplicates += 1
            return False
        if self._last_bar_ns is None or message.ts_ns > self._last_bar_ns:
            self._last_bar_ns = message.ts_ns
        return True


def _outcome_seen(read: asyncio.Future[Message]) -> None:
    """Mark a read's failure as seen: it is raised where the read is awaited, or it belonged
    to a connection being let go (asyncio would otherwise print it, secrets in URLs and all)."""
    if not read.cancelled():
        read.exception()


async def _close(stream: AsyncIterator[Message]) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(ConnectionLostError, RuntimeError):
            await closer()
