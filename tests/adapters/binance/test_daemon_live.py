"""End to end: ``tradeloop live`` as a subprocess against the fake Binance on 127.0.0.1.

The daemon trades every bar, is SIGKILLed mid-run, restarts, reconciles with the venue and
carries on. Every order reaches the venue once, and the book it ends with is the venue's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance
from tests.adapters.live_daemon import (
    FLIP,
    VenueThread,
    assert_sent_once_and_booked_like_the_venue,
    kill_mid_run_then_finish,
    write_live_config,
)

BARS = 100  # ~25 before the SIGKILL; the rest outlasts a restart on a loaded machine


@pytest.fixture
def venue() -> Iterator[VenueThread]:
    async def make() -> FakeBinance:
        fake = FakeBinance(api_key=API_KEY, api_secret=API_SECRET, bars=BARS, bar_interval_s=0.1)
        fake.balances = {"USDT": [10_000.0, 0.0]}  # a flat account
        await fake.start()
        return fake

    thread = VenueThread(make)
    yield thread
    thread.close()


def test_live_daemon_killed_mid_run_restarts_reconciles_and_never_orders_twice(
    venue: VenueThread, tmp_path: Path
) -> None:
    fake: FakeBinance = venue.fake
    config = write_live_config(
        tmp_path,
        FLIP.replace("QTY", "0.1"),  # 0.1 BTC at ~100 USDT: above the 5 USDT NOTIONAL minimum
        "binance",
        fake.settings,
        extra="[broker]\nfractional = true\n",
    )
    sent_before = kill_mid_run_then_finish(
        config,
        {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET},
        lambda: venue.loop.call_soon_threadsafe(fake.start_clock),
        lambda: fake.published >= BARS,
        lambda: len(fake.posted_client_ids),
    )
    summary = assert_sent_once_and_booked_like_the_venue(
        tmp_path, fake.posted_client_ids, sent_before
    )
    for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        held = float(fake.exchange.total(base))
        assert summary["positions"].get(symbol, 0.0) == pytest.approx(held, abs=1e-9)
    assert summary["cash"] == pytest.approx(float(fake.exchange.total("USDT")), abs=1e-6)
    assert summary["fills"] == len(fake.trades) > 0
