"""End to end: ``tradeloop live`` as a subprocess against the fake Binance on 127.0.0.1.

The daemon trades every bar, is SIGKILLed mid-run, restarts, reconciles with the venue and
carries on. Every order reaches the venue once, and the book it ends with is the venue's.
A second run trades native brackets (orderList/otoco) on a fake that matches its book.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance
from tests.adapters.live_daemon import (
    BRACKETS,
    FLIP,
    VenueThread,
    assert_sent_once_and_booked_like_the_venue,
    journaled,
    kill_mid_run_then_finish,
    run_to_the_end,
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


BRACKET_BARS = 40


@pytest.fixture
def bracket_venue() -> Iterator[VenueThread]:
    async def make() -> FakeBinance:
        fake = FakeBinance(
            api_key=API_KEY, api_secret=API_SECRET, bars=BRACKET_BARS, bar_interval_s=0.1
        )
        fake.balances = {"USDT": [10_000.0, 0.0]}  # a flat account
        fake.flat_bars = True  # every bar: open = close = price, high + 2, low − 2
        fake.match_bars = True  # resting orders trade against each closed bar
        await fake.start()
        return fake

    thread = VenueThread(make)
    yield thread
    thread.close()


def test_live_daemon_on_binance_trades_native_brackets_and_ends_as_the_venue(
    bracket_venue: VenueThread, tmp_path: Path
) -> None:
    """Brackets of 0.1 with a limit entry at the close, each ONE orderList/otoco request:
    the next bar (low 2 under) fills the entry at the close, the venue places the exit pair,
    and the bar after trades the exit 1 away (a target 1 above or a stop 1 below; the other
    lies 5 away) and expires the other."""
    fake: FakeBinance = bracket_venue.fake
    strategy = BRACKETS.replace("QTY", "0.1").replace("LAST", str(BRACKET_BARS - 8))
    for name, value in (("ENTRY", "close"), ("NEAR", "1.0"), ("FAR", "5.0")):
        strategy = strategy.replace(name, value)
    config = write_live_config(
        tmp_path, strategy, "binance", fake.settings, extra="[broker]\nfractional = true\n"
    )
    run_to_the_end(
        config,
        {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET},
        lambda: bracket_venue.loop.call_soon_threadsafe(fake.start_clock),
        lambda: fake.published >= BRACKET_BARS,
    )
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    orders, trade_ids = journaled(tmp_path)
    lists = list(fake.lists.lists.values())
    assert len(lists) >= 6  # both symbols, several brackets each
    assert len(fake.posted_client_ids) == len(lists)  # one request per bracket
    venue_orders = fake.exchange.orders
    for found in lists:
        pair = sorted(venue_orders[key]["status"] for key in found["pair"])
        assert (venue_orders[found["working"]]["status"], pair) == ("FILLED", ["EXPIRED", "FILLED"])
    filled_exits = {
        venue_orders[key]["type"]
        for found in lists
        for key in found["pair"]
        if venue_orders[key]["status"] == "FILLED"
    }
    assert filled_exits == {"LIMIT_MAKER", "STOP_LOSS"}  # the strategy alternates
    # the book is the venue's: positions, cash, open orders, and every fill booked once
    for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        assert summary["positions"].get(symbol, 0.0) == pytest.approx(0.0, abs=1e-12)
        assert float(fake.exchange.total(base)) == pytest.approx(0.0, abs=1e-12)
    assert summary["cash"] == pytest.approx(float(fake.exchange.total("USDT")), abs=1e-6)
    assert [o for o in orders if o[3] in ("accepted", "partially_filled", "held", "unknown")] == []
    assert [o for o in venue_orders.values() if o["status"] in ("NEW", "PENDING_NEW")] == []
    assert len(trade_ids) == len(set(trade_ids)) == summary["fills"] == len(fake.trades)
    assert summary["fills"] == 2 * len(lists)  # the entry and one exit each
    exit_statuses = sorted(status for _, reason, _, status, _ in orders if reason != "strategy")
    assert exit_statuses == ["cancelled"] * len(lists) + ["filled"] * len(lists)
    # never a position beyond the entry: the venue's trades in order keep each in [0, 0.1]
    held: dict[str, float] = {}
    owner = {o["orderId"]: o["symbol"] for o in venue_orders.values()}
    for trade in fake.trades:
        symbol = owner[trade["orderId"]]
        sign = 1.0 if trade["isBuyer"] else -1.0
        held[symbol] = held.get(symbol, 0.0) + sign * float(trade["qty"])
        assert -1e-12 <= held[symbol] <= 0.1 + 1e-12
