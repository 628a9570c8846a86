"""End to end: ``tradeloop live`` as a subprocess against the fake Alpaca on 127.0.0.1.

The fake fills market orders at the last published close and reports them on the
trade_updates stream. The daemon is SIGKILLed mid-run, restarts, reconciles and carries on:
every order reaches the venue once, and the book it ends with is the venue's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET
from tests.adapters.alpaca.market import Market
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

MINUTES = 100  # ~25 before the SIGKILL; the rest outlasts a restart on a loaded machine


@pytest.fixture
def venue() -> Iterator[VenueThread]:
    async def make() -> Market:
        return await Market(MINUTES).start()  # type: ignore[return-value]

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
    # the account reports cash to the cent (the fake's GET /v2/account, as Alpaca's), and
    # reconciliation adopts what it reports inside the 1-cent tolerance: with fills at
    # half-cent prices (126.895) the book may carry the venue's reported cent, half a cent
    # from the fake's unrounded internal figure
    assert summary["cash"] == pytest.approx(fake.cash, abs=0.005 + 1e-9)
    assert summary["fills"] == len(fake.activities)


@pytest.fixture
def bracket_venue() -> Iterator[VenueThread]:
    async def make() -> Market:
        return await Market(BRACKET_MINUTES).start()  # type: ignore[return-value]

    thread = VenueThread(make)
    yield thread
    thread.close()


BRACKET_MINUTES = 40


def test_live_daemon_on_alpaca_trades_native_brackets_and_ends_as_the_venue(
    bracket_venue: VenueThread, tmp_path: Path
) -> None:
    """Brackets of 1 share as ONE ``order_class=bracket`` order each; the fake (``Market``)
    fills the entry at the last close, then the exit the next bar reaches (a bar's high is
    0.15 above the last close, its low 0.14 below: a target 0.1 above or a stop 0.1 below
    fills on the next bar) and cancels the other exit itself."""
    fake: Market = bracket_venue.fake
    settings = fake.settings(correction_grace_s=0.05)
    strategy = BRACKETS.replace("QTY", "1").replace("LAST", str(BRACKET_MINUTES - 8))
    for name, value in (("ENTRY", "None"), ("NEAR", "0.1"), ("FAR", "1.0")):
        strategy = strategy.replace(name, value)
    config = write_live_config(tmp_path, strategy, "alpaca", settings)
    extra = f"[feed]\nuniverse = {json.dumps(list(fake.symbols))}\n"
    config.write_text(config.read_text().replace("[feed]\n", extra, 1))
    run_to_the_end(
        config,
        {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET},
        lambda: bracket_venue.spawn(fake.run_clock(0.1)),
        lambda: fake.published >= BRACKET_MINUTES,
    )
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    orders, trade_ids = journaled(tmp_path)
    parents = [o for o in fake.orders.values() if o["order_class"] == "bracket" and o["legs"]]
    assert len(parents) >= 6  # both symbols, several brackets each
    assert len(fake.posted_client_ids) == len(parents)  # one request per bracket, no leg sent
    for parent in parents:
        legs = sorted(fake.orders[leg["id"]]["status"] for leg in parent["legs"])
        assert (parent["status"], legs) == ("filled", ["canceled", "filled"])  # one exit each
    filled_exits = [
        fake.orders[leg["id"]]
        for parent in parents
        for leg in parent["legs"]
        if fake.orders[leg["id"]]["status"] == "filled"
    ]
    assert {leg["type"] for leg in filled_exits} == {"limit", "stop"}  # the strategy alternates
    # the book is the venue's: positions, cash, open orders, and every fill booked once
    for symbol in fake.symbols:
        assert summary["positions"].get(symbol, 0.0) == 0.0 == fake.positions.get(symbol, 0.0)
    assert summary["cash"] == pytest.approx(fake.cash, abs=0.005 + 1e-9)
    assert [o for o in orders if o[3] in ("accepted", "partially_filled", "held", "unknown")] == []
    assert [o for o in fake.orders.values() if o["status"] in ("new", "accepted", "held")] == []
    assert len(trade_ids) == len(set(trade_ids)) == summary["fills"] == len(fake.activities)
    assert summary["fills"] == 2 * len(parents)  # the entry and one exit each
    exit_statuses = sorted(status for _, reason, _, status, _ in orders if reason != "strategy")
    # in the journal too: of each bracket's exits one filled, one cancelled (by the venue)
    assert exit_statuses == ["cancelled"] * len(parents) + ["filled"] * len(parents)
    # never a position beyond the entry: the venue's fills in order keep each symbol in [0, 1]
    held: dict[str, float] = {}
    for fill in fake.activities:
        sign = 1.0 if fill["side"] == "buy" else -1.0
        held[fill["symbol"]] = held.get(fill["symbol"], 0.0) + sign * float(fill["qty"])
        assert 0.0 <= held[fill["symbol"]] <= 1.0
