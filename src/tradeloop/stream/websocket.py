"""WebSocketFeed: stream messages from a bar server (the asyncio shell around ``stream``).

Malformed frames are logged and counted in ``skipped``, never turned into numbers; a lost
connection raises ``ConnectionLostError`` (reconnects belong to the feed supervisor).
``history`` fetches what a drop missed from the server's ``GET /history`` (same host and
port, one encoded message per line).

Read-ahead: the connection buffers up to ``READ_AHEAD_FRAMES`` frames before it stops reading
the socket (the library's default is 16). A strategy slower than its feed then falls behind
frames the daemon has *received*, so the lag behind the feed (``service.lag``) is measured,
instead of hiding in the kernel's socket buffers where no one can see it; the bound keeps the
memory of a run that is far behind finite (TCP then holds the server back).

No compression: the feed offers no ``permessage-deflate`` (the library's default), so frames
arrive as sent. A binary bars frame of 500 assets shrinks by ~18 % deflated, and inflating it
cost the receiver ~250 µs a frame in situ (the library's ``data_received`` took ~380 µs with
it, ~130 µs without), before the runtime saw the bars: latency, for bytes a loopback or LAN
link does not need saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from tradeloop.errors import ConnectionLostError, VenueProtocolError
from tradeloop.events import EndMessage, Message
from tradeloop.stream.codec import NEXT_START_HEADER, decode

__all__ = ["READ_AHEAD_FRAMES", "WebSocketFeed"]

READ_AHEAD_FRAMES = 1024


class WebSocketFeed:
    """Messages from ``url`` until the server says the stream has ended."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.skipped = 0
        self.last_error = ""

    def connection(self) -> connect:
        """The connection to the bar server (as ``messages`` opens it): read-ahead bounded,
        no compression (see the module docstring)."""
        return connect(self.url, max_size=2**20, max_queue=READ_AHEAD_FRAMES, compression=None)

    async def messages(self) -> AsyncIterator[Message]:
        try:
            async with self.connection() as connection:
                async for frame in connection:
                    try:
                        message = decode(frame)
                    except VenueProtocolError as err:
                        self.skipped += 1
                        self.last_error = str(err)
                        continue
                    if isinstance(message, EndMessage):
                        return
                    yield message
            raise ConnectionLostError(f"{self.url}: closed before the end of the stream")
        except ConnectionClosed as err:
            raise ConnectionLostError(f"{self.url}: connection closed ({err})") from err
        except (OSError, InvalidURI, WebSocketException) as err:
            raise ConnectionLostError(f"{self.url}: cannot connect ({err})") from err

    async def history(self, start_ns: int, end_ns: int | None) -> list[Message]:
        """Every message of the timestamps in ``[start_ns, end_ns]`` the server has published
        (page after page: the server cuts a long answer and says where the next starts)."""
        messages: list[Message] = []
        page: int | None = start_ns
        while page is not None:
            text, page = await self._history_page(page, end_ns)
            for line in text.splitlines():
                try:
                    message = decode(line)
                except VenueProtocolError as err:
                    self.skipped += 1
                    self.last_error = str(err)
                    continue
                if not isinstance(message, EndMessage):
                    messages.append(message)
        return messages

    async def _history_page(self, start_ns: int, end_ns: int | None) -> tuple[str, int | None]:
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        query = f"start_ns={start_ns}" + ("" if end_ns is None else f"&end_ns={end_ns}")
        url = urlunsplit((scheme, parts.netloc, "/history", query, ""))
        try:
            timeout = aiohttp.ClientTimeout(total=30)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                text = await response.text()
                if response.status != 200:
                    raise ConnectionLostError(f"{url}: history answered {response.status}: {text}")
                following = response.headers.get(NEXT_START_HEADER)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ConnectionLostError(f"{url}: history request failed ({err!r})") from err
        if following is None:
            return text, None
        if not following.isdigit() or int(following) <= start_ns:
            raise VenueProtocolError(f"{url}: history's next page {following!r} goes nowhere")
        return text, int(following)
