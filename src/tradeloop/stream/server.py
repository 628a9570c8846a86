"""A WebSocket server that streams historical bars live (``tradeloop serve-replay``). I/O edge.

Two clocks:

- ``shared_clock=False`` (default): every client gets the whole replay from the start.
- ``shared_clock=True``: it behaves like a venue. One replay runs from the moment the first
  client connects; a client receives what is published while it is connected, and what it
  missed (a drop, a restart) it fetches with ``GET /history?start_ns=A&end_ns=B``.

``GET /history`` (both clocks) answers every message of the timestamps in ``[A, B]``
published so far, one encoded message per line (``stream/codec.py``), context first, in
pages of at most ``max_history_messages`` bars (whole timestamps): a page cut short names the
next page's start in its ``X-Tradeloop-Next-Start-Ns`` header. The answer is encoded off the
event loop, so a large request never stalls the live stream.
``batched=True`` sends one ``bars`` message per timestamp instead of one per bar, and
``binary=True`` sends it as a binary columnar frame (``stream.encode_binary``); history
answers stay JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tradeloop.events import BarBatchMessage, EndMessage
from tradeloop.stream.codec import NEXT_START_HEADER, encode, encode_binary
from tradeloop.stream.replay import load_replay, replay_messages

__all__ = ["ReplayServer"]

_END = encode(EndMessage())


class ReplayServer:
    """Serve ``data`` (anything HistoricalFeed reads) and ``context`` on ``host:port``."""

    def __init__(
        self,
        data: Any,
        *,
        context: Any = None,
        signal_columns: list[str] | None = None,
        speed: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        shared_clock: bool = False,
        batched: bool = False,
        binary: bool = False,
        max_history_messages: int = 50_000,
    ) -> None:
        self.table, self.context = load_replay(data, context, signal_columns)
        self.max_history_messages = max_history_messages
        self.speed = speed
        self.host, self.port = host, port
        self.shared_clock = shared_clock
        self.batched = batched or binary
        self.binary = binary
        self.clients: set[ServerConnection] = set()
        self.published = 0 if shared_clock else self.table.n_timestamps
        self.finished = False
        self._server: Server | None = None
        self._clock: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> ReplayServer:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._http,
            max_size=2**24,
            compression=None,  # as the feed: deflating frames costs latency (stream.websocket)
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0
        return self

    async def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # -- the stream ---------------------------------------------------------------------------

    def frames(self, *, binary: bool | None = None, start: int = 0, stop: int | None = None) -> Any:
        """(k, ts_ns, encoded messages) per timestamp, in time order (``start:stop`` only)."""
        binary = self.binary if binary is None else binary
        for k, (ts_ns, messages) in enumerate(
            replay_messages(self.table, self.context, batched=self.batched, start=start, stop=stop),
            start,
        ):
            yield (
                k,
                ts_ns,
                [
                    encode_binary(m) if binary and isinstance(m, BarBatchMessage) else encode(m)
                    for m in messages
                ],
            )

    async def _handle(self, connection: ServerConnection) -> None:
        if self.shared_clock:
            await self._join(connection)
            return
        previous: int | None = None
        try:
            for _, ts_ns, frames in self.frames():
                if self.speed > 0 and previous is not None:
                    await asyncio.sleep((ts_ns - previous) / 1e9 / self.speed)
                previous = ts_ns
                for frame in frames:
                    await connection.send(frame)
            await connection.send(_END)
        except ConnectionClosed:
            return

    async def _join(self, connection: ServerConnection) -> None:
        if self.finished:
            with contextlib.suppress(ConnectionClosed):
                await connection.send(_END)
            return
        self.clients.add(connection)
        if self._clock is None:
            self._clock = asyncio.create_task(self._publish())
        try:
            await connection.wait_closed()
        finally:
            self.clients.discard(connection)

    async def _publish(self) -> None:
        """The shared clock: publish each timestamp to whoever is connected at the time."""
        previous: int | None = None
        for k, ts_ns, frames in self.frames():
            if self.speed > 0 and previous is not None:
                await asyncio.sleep((ts_ns - previous) / 1e9 / self.speed)
            else:
                await asyncio.sleep(0)
            previous = ts_ns
            self.on_publish(k)
            for frame in frames:
                broadcast(self.clients, frame)
            self.published = k + 1
        self.finished = True
        broadcast(self.clients, _END)

    def on_publish(self, k: int) -> None:
        """Called before timestamp ``k`` goes out (a hook for fault injection in tests)."""

    # -- history over HTTP ---------------------------------------------------------------------

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != "/history":
            return None  # a WebSocket handshake
        query = parse_qs(url.query)
        try:
            start = int(query["start_ns"][0])
            end = int(query["end_ns"][0]) if "end_ns" in query else None
        except (KeyError, ValueError):
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "GET /history?start_ns=<int>[&end_ns=<int>]\n"
            )
        times = self.table.unique_ts_ns[: self.published]
        first = int(np.searchsorted(times, start, side="left"))
        last = len(times) if end is None else int(np.searchsorted(times, end, side="right"))
        stop = self._page_end(first, last)
        # encoding is the slow part: off the loop that streams to every client
        body = await asyncio.to_thread(self._history_body, first, stop)
        response = connection.respond(HTTPStatus.OK, body)
        if stop < last:
            response.headers[NEXT_START_HEADER] = str(int(times[stop]))
        return response

    def _page_end(self, first: int, last: int) -> int:
        """The end of the page from timestamp ``first``: at most ``max_history_messages``
        bars (at least one whole timestamp)."""
        if first >= last:
            return last
        bounds = self.table.ts_bounds
        limit = int(np.searchsorted(bounds, bounds[first] + self.max_history_messages, "right")) - 1
        return min(last, max(first + 1, limit))

    def _history_body(self, first: int, stop: int) -> str:
        return "".join(
            f"{frame}\n"
            for _, _, frames in self.frames(binary=False, start=first, stop=stop)
            for frame in frames
        )
