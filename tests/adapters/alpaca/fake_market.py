"""The fake Alpaca's market: minute bars published on the data stream and served by
``GET /v2/stocks/bars`` (https://docs.alpaca.markets/reference/stockbars: grouped by symbol,
paged by ``next_page_token``)."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.adapters.alpaca.payloads_io import minute_text, payload

__all__ = ["FakeMarket"]


class FakeMarket:
    """Mixin of ``FakeAlpaca``: the bars it publishes and serves."""

    symbols: tuple[str, ...]
    page_limit: int
    bars: dict[tuple[str, int], dict[str, Any]]
    bar_requests: list[dict[str, str]]

    # from FakeAlpaca and FakeStreams: ``_denied(request)`` (auth and injected faults) and
    # ``_send_data(frame)`` (to every subscribed data client)
    _denied: Any
    _send_data: Any

    # -- the market -----------------------------------------------------------------------------

    def bar(self, symbol: str, i: int, kind: str = "b", bump: float = 0.0) -> dict[str, Any]:
        """Minute ``i`` of ``symbol``, shaped like the recorded bar of that symbol."""
        template = next(b for b in payload("ws_bars_batch.json") if b["S"] == symbol)
        base = template["o"] + 0.01 * i
        bar = dict(template, T=kind, t=minute_text(i), o=round(base, 4))
        bar.update(h=round(base + 0.2 + bump, 4), l=round(base - 0.1, 4))
        bar.update(c=round(base + 0.05 + bump, 4), v=template["v"] + i)
        return bar

    async def publish(self, i: int, symbols: tuple[str, ...] | None = None) -> None:
        """Minute ``i``'s bars, one batched frame, to every subscribed client; stored for REST."""
        frame = [self.bar(s, i) for s in symbols or self.symbols]
        for bar in frame:
            self.bars[(bar["S"], i)] = bar
        await self._send_data(frame)

    async def correct(self, i: int, symbol: str, bump: float) -> dict[str, Any]:
        """An ``"u"`` for minute ``i``: higher high and close (late trades); REST has it too."""
        bar = self.bar(symbol, i, "u", bump)
        self.bars[(symbol, i)] = dict(bar, T="b")
        await self._send_data([bar])
        return bar

    async def _get_bars(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        query = dict(request.query)
        self.bar_requests.append(query)
        symbols = query["symbols"].split(",")
        start, end = query["start"], query.get("end", "9999")
        rows = sorted(
            (s, i)
            for (s, i) in self.bars
            if s in symbols and start <= minute_text(i) and minute_text(i) <= end
        )  # Alpaca pages by symbol, then time
        offset = int(base64.b64decode(query["page_token"])) if "page_token" in query else 0
        page = rows[offset : offset + self.page_limit]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for s, i in page:
            rest = {k: v for k, v in self.bars[(s, i)].items() if k not in ("T", "S")}
            grouped.setdefault(s, []).append(rest)
        more = offset + self.page_limit < len(rows)
        token = base64.b64encode(str(offset + self.page_limit).encode()).decode() if more else None
        return web.json_response({"bars": grouped, "next_page_token": token})
