"""End to end: ``tradeloop live`` as a subprocess against the fake Alpaca on 127.0.0.1.

The fake fills market orders at the last published close and reports them on the
trade_updates stream. The daemon is SIGKILLed mid-run, restarts, reconciles and carries on:
every order reaches the venue once, and the book it ends with is the venue's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET, FakeAlpaca
from tests.adapters.live_daemon import (
    FLIP,
    VenueThread,
    assert_sent_once_and_booked_like_the_venue,
    kill_mid_run_then_finish,
    write_live_config,
)

MINUTES = 100  # ~25 before the SIGKILL; the rest outlasts a restart on a loaded machine


class Market(FakeAlpaca):
    """FakeAlpaca with a clock (a minute every ``interval_s``) that fills market orders."""

    def __init__(self) -> None:
        super().__init__()
        self.posted_client_ids: list[str] = []
        self.last_close: dict[str, float] = {}
        self.published = 0

    async def run_clock(self, interval_s: float) -> None:
        for i in range(MINUTES):
            await self.publish(i)
            self.last_close.update({s: self.bars[(s, i)]["c"] for s in self.symbols})
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
            await self.send_updates(self.fill(order["id"], float(body["qty"]), price))
        return response


@pytest.fixture
def venue() -> Iterator[VenueThread]:
    async def make() -> Market:
        return await Market().start()  # type: ignore[return-value]

    thread = VenueThread(make)
    yield thread
    thread.close()


def test_live_daemon_on_alpaca_killed_mid_run_restarts_and_matches_the_venue(
    venue: VenueThread, tmp_path: Path
) -> None:
    fake: Market = venue.fake
    settings = fake.settings(correction_grace_s=0.05)
    extra = f"[feed]\nuniverse = {json.dumps(list(fake.symbols))}\n"
    config = write_live_config(tmp_path, FLIP.replace("QTY", "1"), "alpaca", settings)
    config.write_text(config.read_text().replace("[feed]\n", extra, 1))
    sent_before = kill_mid_run_then_finish(
        config,
        {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET},
        lambda: venue.spawn(fake.run_clock(0.1)),
        lambda: fake.published >= MINUTES,
        lambda: len(fake.posted_client_ids),
    )
    summary = assert_sent_once_and_booked_like_the_venue(
        tmp_path, fake.posted_client_ids, sent_before
    )
    for symbol in fake.symbols:
        assert summary["positions"].get(symbol, 0.0) == fake.positions.get(symbol, 0.0)
    assert summary["cash"] == pytest.approx(fake.cash, abs=1e-6)
    assert summary["fills"] == len(fake.activities)
