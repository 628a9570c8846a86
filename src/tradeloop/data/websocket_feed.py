"""WebSocketFeed: stream messages from a bar server (the asyncio shell around ``stream``).

Malformed frames are logged and counted in ``skipped``, never turned into numbers; a lost
connection raises ``ConnectionLostError`` (reconnects belong to the feed supervisor).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from tradeloop.data.stream import EndMessage, Message, decode
from tradeloop.errors import ConnectionLostError, VenueProtocolError

__all__ = ["WebSocketFeed"]


class WebSocketFeed:
    """Messages from ``url`` until the server says the stream has ended."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.skipped = 0
        self.last_error = ""

    async def messages(self) -> AsyncIterator[Message]:
        try:
            async with connect(self.url, max_size=2**20) as connection:
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
