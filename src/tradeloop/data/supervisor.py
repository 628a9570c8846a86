"""Feed supervision: reconnect with jittered backoff, and treat a silent feed as dead.

``SupervisedFeed`` wraps anything with ``messages()`` (a WebSocketFeed). When the stream
drops (``ConnectionLostError``) or sends nothing for ``stale_after_s`` (a bar was due), it
logs, waits ``min(max_backoff_s, base_backoff_s × 2^attempt)`` with ±50 % jitter, connects
again and yields a ``Reconnected`` marker first, so the runtime can skip what it has already
handled (a replay server restarts from the beginning; a venue backfills from its history).
The stream ending normally ends the supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import structlog

from tradeloop.data.stream import Message
from tradeloop.errors import ConnectionLostError

__all__ = ["Reconnected", "SupervisedFeed"]


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The feed came back after a drop or a stall (``attempt`` counts from 1)."""

    attempt: int


class _Feed(Protocol):
    def messages(self) -> AsyncIterator[Message]: ...


class SupervisedFeed:
    def __init__(
        self,
        feed: _Feed,
        *,
        stale_after_s: float = 30.0,
        base_backoff_s: float = 0.25,
        max_backoff_s: float = 15.0,
        max_attempts: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.feed = feed
        self.stale_after_s = stale_after_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        self.reconnects = 0
        self.stalls = 0
        self._random = random.Random(seed)
        self._log = structlog.get_logger().bind(component="feed_supervisor")

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
                while True:
                    try:
                        message = await asyncio.wait_for(anext(stream), self.stale_after_s)
                    except TimeoutError:
                        self.stalls += 1
                        raise ConnectionLostError(
                            f"no message for {self.stale_after_s:g} s: the feed is stale"
                        ) from None
                    except StopAsyncIteration:
                        return
                    attempt = 0
                    yield message
            except ConnectionLostError as err:
                attempt += 1
                self.reconnects += 1
                if self.max_attempts is not None and attempt > self.max_attempts:
                    raise
                delay = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempt - 1))
                delay *= 0.5 + self._random.random()
                self._log.warning(
                    "feed_reconnecting", attempt=attempt, delay_s=round(delay, 3), reason=str(err)
                )
                await asyncio.sleep(delay)
            finally:
                await _close(stream)


async def _close(stream: AsyncIterator[Message]) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(ConnectionLostError, RuntimeError):
            await closer()
