"""The journal keeps what the new order kinds need across a restart: a paper run stopped
mid-way, restored from its SQLite file and resumed, gives the uninterrupted run's fills with
brackets (held children, OCO links), trailing stops and good-till-date orders working; an
order of unknown outcome is written again when it is settled."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tradeloop.broker.test_paper_parity import BARS, PLACES, Entries
from tests.tradeloop.fake_venue import T0, FakeVenue, cid
from tradeloop import PaperBroker, ReplayFeed
from tradeloop.broker.live import LiveBroker
from tradeloop.events import OrderStatus, Side
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.journal import Journal


def fills(broker: PaperBroker) -> list[tuple[Any, ...]]:
    return [(f.ts_ns, f.asset_id, f.side, f.qty, f.price, f.reason) for f in broker.fills]


async def run(path: Path, kind: str, stop_after: int | None) -> tuple[PaperBroker, int]:
    """One daemon life: restore what the journal holds, run until ``stop_after`` timestamps
    (or the end), committing every timestamp."""
    journal = Journal(path, "Entries")
    saved = journal.load()
    broker = PaperBroker(100_000.0, commission=5e-4)
    broker.book.mint_client_id = journal.client_id_minter()
    if saved.last_ts_ns is not None:
        broker.restore(saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks)
    strategy = Entries(*PLACES[kind])
    seen = 0

    def commit(ts_ns: int) -> None:
        nonlocal seen
        journal.commit(ts_ns, broker, runtime.state(), None)
        seen += 1
        if stop_after is not None and seen >= stop_after:
            runtime.request_stop()

    runtime = LiveRuntime(
        ReplayFeed(BARS),
        strategy,
        broker,
        resume={**saved.runtime, "last_ts_ns": saved.last_ts_ns},
        on_timestamp=commit,
    )
    await runtime.run()
    journal.close()
    return broker, seen


@pytest.mark.parametrize(
    "kind", ["bracket_prices", "bracket_fractions", "oco", "trailing", "good_till_date"]
)
async def test_restart_mid_run_keeps_order_groups_and_options(tmp_path: Path, kind: str) -> None:
    whole, _ = await run(tmp_path / "whole.sqlite", kind, None)
    path = tmp_path / "journal.sqlite"
    for stop_after in (37, 41, 29):  # three lives, stopped at different points
        await run(path, kind, stop_after)
    resumed, _ = await run(path, kind, None)
    assert fills(resumed) == fills(whole)
    assert [o.status for o in resumed.orders] == [o.status for o in whole.orders]


def test_journal_from_before_order_options_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL UNIQUE,"
        " asset_id TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, order_type TEXT NOT NULL,"
        " limit_price REAL, stop_price REAL, tif TEXT NOT NULL, submitted_ts_ns INTEGER NOT NULL,"
        " reason TEXT NOT NULL, status TEXT NOT NULL, filled_qty REAL NOT NULL,"
        " avg_fill_price REAL NOT NULL, triggered INTEGER NOT NULL, session_day INTEGER,"
        " message TEXT NOT NULL, reserve REAL)"
    )
    db.commit()
    db.close()
    Journal(path, "s").close()
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(orders)")]
    assert columns[-1] == "extra"


def test_journal_commit_on_a_full_disk_is_a_storage_error_and_keeps_the_last_commit(
    tmp_path: Path,
) -> None:
    from tradeloop.errors import StateStorageError

    path = tmp_path / "journal.sqlite"
    journal = Journal(path, "s")
    broker = PaperBroker(100_000.0)
    broker.marks["A"] = 10.0
    journal.commit(1, broker, {"bars": 1}, None)
    # SQLite's own limit on the file's pages gives the disk-full error (SQLITE_FULL), which
    # rolls the transaction back by itself: the journal must say so, not fail to roll back
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")
    ids = [f"A{i}" for i in range(500)]
    for ts in range(2, 50):  # bars that need new pages (4 kB each)
        journal.record_bars((ts, ids, {"close": np.full(500, 10.0)}))
    with pytest.raises(StateStorageError, match="cannot commit a timestamp: database or disk"):
        journal.commit(2, broker, {"bars": 2}, None)
    journal.close()
    again = Journal(path, "s")
    assert (again.seq, again.load().last_ts_ns) == (1, 1)
    again.close()


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda p: p.write_bytes(b"this is not an sqlite database, just text" * 100), "damaged"),
        (lambda p: os.truncate(p, p.stat().st_size // 2), "damaged"),
    ],
)
def test_journal_that_is_not_a_database_is_a_damaged_state_error(
    tmp_path: Path, damage: Any, error: str
) -> None:
    from tradeloop.errors import StateDamagedError

    path = tmp_path / "journal.sqlite"
    journal = Journal(path, "s")
    broker = PaperBroker(100_000.0)
    for ts in range(1, 30):
        journal.record_bars((ts, ["A"], {"close": np.full(1, 10.0)}))
        journal.commit(ts, broker, {}, None)
    journal.close()
    damage(path)
    with pytest.raises(StateDamagedError, match=f"the journal is {error}"):
        Journal.reader(path).check()


async def test_an_order_of_unknown_outcome_is_written_again_once_it_is_settled(
    tmp_path: Path,
) -> None:
    """Found by the live daemon test: an order journaled as UNKNOWN was never written again,
    so the journal kept "unknown" after the lookup had settled it (here: accepted at the
    venue, the 5xx came after it took the order), and a restart would look it up again."""
    venue = FakeVenue()
    venue.faults = ["after"]  # the venue takes the order, the answer is a 503
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    journal = Journal(tmp_path / "journal.sqlite", "s")
    order = broker.submit("A", Side.BUY, 1)
    journal.commit(T0, broker, {}, None)
    await broker.send()
    journal.commit(T0, broker, {}, None)
    assert order.status is OrderStatus.UNKNOWN
    await broker.resolve()
    assert order.status is OrderStatus.ACCEPTED
    journal.commit(T0 + 1, broker, {}, None)
    journal.close()
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        rows = db.execute("SELECT client_order_id, status FROM orders").fetchall()
    assert rows == [("cid1", "accepted")]
