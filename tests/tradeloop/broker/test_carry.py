"""Borrow fees across a restart: a paper run with a short, journaled every timestamp, stopped
after day 2 and restored from its SQLite journal, charges days 3 and 4 exactly as the
uninterrupted run does. The fees are those of ``test_margin``'s hand-worked rally (36.5 % a
year = 0.1 % a day of the short's value: 10.00, 11.00, 12.50, 12.40)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Scripted, bars
from tests.tradeloop.broker.test_margin import RALLY
from tradeloop import Margin, PaperBroker, ReplayFeed
from tradeloop.broker.carry import restore_carry
from tradeloop.errors import ConfigError
from tradeloop.runtime.live import LiveRuntime
from tradeloop.service.journal import JOURNAL_FILE, Journal
from tradeloop.service.results import result_from_journal

MARGIN = Margin(borrow_rate=0.365)


async def life(path: Path, stop_after: int | None, *, carry: bool = True) -> PaperBroker:
    """One daemon life, as the paper daemon composes it: restore, run, commit each timestamp."""
    journal = Journal(path, "Scripted")
    journal.remember("initial_cash", "10000.0")  # as the paper daemon does, for the report
    saved = journal.load()
    broker = PaperBroker(10_000.0, allow_short=True, margin=MARGIN)
    broker.book.mint_client_id = journal.client_id_minter()
    if saved.last_ts_ns is not None:
        broker.restore(saved.orders, saved.fills, saved.reserve, saved.reserved_total, saved.marks)
        if carry:
            broker.restore_carry(saved.live)
    seen = 0

    def commit(ts_ns: int) -> None:
        nonlocal seen
        journal.commit(ts_ns, broker, runtime.state(), None)
        seen += 1
        if stop_after is not None and seen >= stop_after:
            runtime.request_stop()

    strategy = Scripted({(0, "X"): lambda s, e: s.sell("X", 100)})
    runtime = LiveRuntime(
        ReplayFeed(bars(RALLY)),
        strategy,
        broker,
        resume={**saved.runtime, "last_ts_ns": saved.last_ts_ns},
        on_timestamp=commit,
        record=journal.record_bars,
    )
    await runtime.run()
    journal.close()
    return broker


def charged(broker: PaperBroker) -> list[float]:
    return [round(c.amount, 9) for c in broker.book.charges]


async def test_a_restart_charges_each_days_borrow_fee_once_as_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    whole = await life(tmp_path / "whole.sqlite", None)
    assert charged(whole) == [10.0, 11.0, 12.5, 12.4]
    await life(tmp_path / "split.sqlite", 3)  # days 0, 1, 2: fees of days 1 and 2
    resumed = await life(tmp_path / "split.sqlite", None)
    assert charged(resumed) == charged(whole)
    assert resumed.cash == pytest.approx(whole.cash) == pytest.approx(19_954.1)


async def test_without_the_journaled_fee_day_a_restart_would_skip_a_day(tmp_path: Path) -> None:
    """The failure the journaled state prevents: the charges and the day are lost."""
    await life(tmp_path / "split.sqlite", 3)
    resumed = await life(tmp_path / "split.sqlite", None, carry=False)
    assert charged(resumed) == [12.4]  # day 3 skipped (no fee day), days 1-2 forgotten
    assert resumed.cash > 19_954.1


async def test_the_report_of_a_journal_counts_the_borrow_fees_charged(tmp_path: Path) -> None:
    """``tradeloop report`` (``result_from_journal``) ends at the daemon's cash: 19,954.10,
    the four fees included (without them it would say 19,954.10 + 45.90 = 20,000.00)."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    whole = await life(state_dir / JOURNAL_FILE, None)
    result = result_from_journal(state_dir)
    last = result.equity_curve.row(-1, named=True)
    assert last["cash"] == pytest.approx(whole.cash) == pytest.approx(19_954.1)
    assert result["final_value"] == pytest.approx(whole.equity())


def test_restore_carry_refuses_a_damaged_state_and_a_book_that_has_charges() -> None:
    broker = PaperBroker(10_000.0, allow_short=True, margin=MARGIN)
    with pytest.raises(ConfigError, match="charges not understood"):
        broker.restore_carry({"charges": [["x", "X", "1", "borrow_fee"]]})
    broker.book.charge("X", 1.0, "borrow_fee")
    with pytest.raises(ConfigError, match="without charges"):
        restore_carry(broker.book, {})


def test_live_state_of_a_run_without_fees_is_empty_plain_values() -> None:
    state: dict[str, Any] = PaperBroker(10_000.0).live_state()
    assert state == {"fee_day": None, "charges": []}
