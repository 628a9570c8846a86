"""The bar feed as a restartable task: a queue between a ``SupervisedFeed`` and the runtime.

``SupervisedFeed`` already reconnects, backfills and de-duplicates; what it cannot survive
(a bug, an error it does not know) ends its ``messages()``. ``FeedPump.run`` is the task
body the daemon's supervisor owns: it copies the feed's messages into a bounded queue, and
when restarted after a failure it first queues a ``Reconnected`` marker, so the runtime drops
a half-received timestamp, and the feed backfills from the last bar it delivered. The
runtime reads ``messages()`` and never sees the failure. The stream ending normally ends
the runtime (the pump then waits to be cancelled).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tradeloop.events import Message, Reconnected
from tradeloop.stream.supervisor import SupervisedFeed

__all__ = ["FeedPump"]

_END = object()


class FeedPump:
    """``run(handle)`` for the supervisor, ``messages()`` for the ``LiveRuntime``."""

    def __init__(self, feed: SupervisedFeed, *, maxsize: int = 1024) -> None:
        self.feed = feed
        self.restarts = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._ended = asyncio.Event()

    async def run(self, handle: Any) -> None:
        """Copy the feed into the queue; after a restart, a ``Reconnected`` goes first."""
        if self._ended.is_set():
            await asyncio.Event().wait()  # the stream is over: nothing to restart
        if handle.restarts:
            self.restarts += 1
            await self._queue.put(Reconnected(self.restarts))
        async for message in self.feed.messages():
            await self._queue.put(message)
            handle.restored()
        self._ended.set()
        await self._queue.put(_END)
        await asyncio.Event().wait()  # done; the runtime ends, the daemon cancels us

    async def messages(self) -> AsyncIterator[Message | Reconnected]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item
