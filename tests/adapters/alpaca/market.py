"""FakeAlpaca with a clock, for the end-to-end daemon tests and the fault matrix: a minute of
bars every ``interval_s``, market orders filled at the last published close and reported
on the trade_updates stream, and working limit, stop and trailing orders (an order class's
legs too) matched against each published bar (``fake_classes``), as Alpaca's paper venue
fills them from its quotes (https://docs.alpaca.markets/docs/paper-trading)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tests.adapters.alpaca.fake_venue import FakeAlpaca

__all__ = ["Market"]


class Market(FakeAlpaca):
    """FakeAlpaca with a clock (a minute every ``interval_s``) that fills market orders."""

    def __init__(self, minutes: int = 100) -> None:
        super().__init__()
        self.minutes = minutes
        self.posted_client_ids: list[str] = []
        self.last_close: dict[str, float] = {}
        self.published = 0

    async def run_clock(self, interval_s: float) -> None:
        for i in range(self.minutes):
            await self.publish(i)
            self.last_close.update({s: self.bars[(s, i)]["c"] for s in self.symbols})
            for symbol in self.symbols:
                await self.match(symbol, self.bars[(symbol, i)])
            self.published = i + 1
            await asyncio.sleep(interval_s)

    async def _post_order(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.posted_client_ids.append(body["client_order_id"])
        response = await super()._post_order(request)
        if response.status == 200 and body["type"] == "market":
            order = next(
                o for o in self.orders.values() if o["client_order_id"] == body["client_order_id"]
            )
            price = self.last_close[body["symbol"]]
            await self.report_fill(order["id"], float(body["qty"]), price)
        return response
