"""The fault matrix's procedure: ``tradeloop live`` as a subprocess trading on a fake venue
(Binance or Alpaca: ``fault_venues``) through a ``FaultProxy``; a fault is injected once the
venue's clock reaches a bar,
the daemon runs to the end of the clock and is stopped with SIGTERM; then the checks that
must hold whatever the fault: the book is the venue's (positions, cash, open orders), no
position ever went beyond what the strategy holds at most, every client id was posted once,
the fault is in the log, and the gate is in the state the config says."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.fault_proxy import FaultProxy
from tests.adapters.fault_venues import VENUES, MatrixVenue
from tests.adapters.live_daemon import start_live, write_live_config

# Buys QTY of a flat symbol, sells what it holds; one order working at a time per symbol, so
# a fill still on its way (or an order of unknown outcome) is never answered by another buy.
# QTY is the venue's (``MatrixVenue.qty``: above its minimums; 0.01 BTC was under the fake
# Binance's 5 USDT NOTIONAL, so nothing traded and every check held trivially).
ONE_AT_A_TIME = """
from tradeloop import Strategy


class Flip(Strategy):
    def on_market_event(self, event, context):
        if self.get_open_orders(event.asset_id):
            return
        held = self.get_position(event.asset_id)
        if held > 0:
            self.sell(event.asset_id, held)
        else:
            self.buy(event.asset_id, QTY)
"""


@dataclass
class Fault:
    """One cell of the matrix: what to inject, at which bar, and what must follow."""

    task: str  # the daemon task it hits
    inject: Callable[[FaultProxy, Any], Awaitable[None]]  # (the proxy, the fake venue)
    logged: tuple[str, ...]  # each of these log events must be in the daemon's log
    # what the proxy must have done: (a regex of a FaultProxy.injected entry, how many times)
    injected: tuple[tuple[str, int], ...] = ()
    restored: bool = False  # the task failed, and the supervisor logged it restored
    gate: str = "normal"
    restore_deadline_s: float = 5.0
    at_bar: int = 6
    bars: int = 30  # the venue's clock must outlast the fault: a backfill needs a live bar
    tasks_lost: tuple[str, ...] = ()
    venue: str = "binance"  # a key of fault_venues.VENUES


@dataclass
class Run:
    """What one daemon run left behind."""

    logs: list[dict[str, Any]]
    summary: dict[str, Any]
    injected: list[str] = field(default_factory=list)  # what the proxy did (FaultProxy)
    ready_during: list[dict[str, Any]] = field(default_factory=list)
    metrics: str = ""


def run_with_fault(tmp_path: Path, fault: Fault, *, bars: int, interval_s: float = 0.1) -> Run:
    """Trade ``bars`` bars on the fake through the proxy, with ``fault`` injected."""
    venue = VENUES[fault.venue]()
    venue.start(bars, interval_s)
    proxy: FaultProxy = venue.thread.call(FaultProxy(venue.fake.port).start())
    try:
        extra = (
            f"{venue.broker_table}"
            "[supervision]\nbase_backoff_s = 0.05\nmax_backoff_s = 0.5\n"
            f"restore_deadline_s = {fault.restore_deadline_s}\n"
        )
        strategy = ONE_AT_A_TIME.replace("QTY", repr(venue.qty))
        settings = venue.settings(proxy.port)
        config = write_live_config(tmp_path, strategy, venue.name, settings, extra=extra)
        universe = f"[feed]\nuniverse = {json.dumps(venue.symbols())}\n"  # whole timestamps
        text = config.read_text().replace("[feed]\n", universe, 1)
        config.write_text(text + "reconcile_every_s = 0.5\n")
        run = _drive(config, venue, proxy, fault, bars)
        run.injected = list(proxy.injected)
        check_book_is_the_venues(run, venue, tmp_path)
        return run
    finally:
        venue.thread.call(proxy.close())
        venue.thread.close()


def _drive(config: Path, venue: MatrixVenue, proxy: FaultProxy, fault: Fault, bars: int) -> Run:
    daemon = start_live(config, venue.env)
    logs: list[dict[str, Any]] = []
    errors: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(daemon.stdout, logs), daemon=True)
    reader.start()
    # stderr read too, so neither pipe can fill up and block the daemon
    drain = threading.Thread(target=lambda: errors.extend(daemon.stderr or ()), daemon=True)
    drain.start()
    run = Run(logs, {})
    try:
        started = _await_event(logs, "daemon_started", daemon)
        health = started["health"]
        # the clock starts once the daemon's bar subscription is in place: a fresh start
        # does not backfill before its first bar, so a minute published before the
        # subscription (Alpaca's auth and subscribe take a few round trips) was never the
        # daemon's to handle, and the timestamp count of a bar_feed cell came out one short
        _until(venue.listening, 30)
        venue.start_clock()
        _until(lambda: venue.published() >= fault.at_bar, 30)
        venue.thread.call(fault.inject(proxy, venue.fake))
        _until(lambda: venue.published() >= bars, 60)
        _handled_all(health, bars, 20.0)  # a backfill after a late reconnect may still run
        time.sleep(1.5)  # the last bar's order and fill
        run.ready_during.append(_readyz(health))
        run.metrics = urllib.request.urlopen(f"{health}/metrics", timeout=5).read().decode()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        reader.join(timeout=10)
        drain.join(timeout=10)
        for pipe in (daemon.stdout, daemon.stderr):
            if pipe is not None:
                pipe.close()
    assert daemon.returncode == 0, "".join(errors)
    run.summary = json.loads((config.parent / "state" / "summary.json").read_text())
    return run


def check_book_is_the_venues(run: Run, venue: MatrixVenue, tmp_path: Path) -> None:
    """Book == venue, never more than the strategy's quantity held, every client id posted
    once, and the run traded (a cell that never ordered proves nothing)."""
    summary, held = run.summary, venue.held()
    for symbol in venue.symbols():
        assert summary["positions"].get(symbol, 0.0) == pytest.approx(
            held.positions.get(symbol, 0.0), abs=1e-9
        )
        position = 0.0
        for _, signed in (t for t in held.trades if t[0] == symbol):
            position += signed
            assert -1e-12 <= position <= venue.qty + 1e-12, (symbol, position)
        assert sum(t[0] == symbol for t in held.trades) >= 4, (symbol, held.trades)
    # the fees are in the cash currency: the book's cash is the venue's, to its reporting
    assert summary["cash"] == pytest.approx(held.cash, abs=held.cash_digits)
    assert summary["fills"] == len(held.trades)
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite") as db:
        journal_open = db.execute(
            "SELECT COUNT(*) FROM orders WHERE status IN ('accepted', 'partially_filled')"
        ).fetchone()[0]
    assert journal_open == held.open_orders
    assert len(held.posted) == len(set(held.posted))


def events(run: Run, name: str) -> list[dict[str, Any]]:
    return [x for x in run.logs if x.get("event") == name]


def _read_lines(stream: Any, into: list[dict[str, Any]]) -> None:
    for line in stream:
        try:
            into.append(json.loads(line))
        except json.JSONDecodeError:
            into.append({"event": "unparsed", "line": line})


def _await_event(logs: list[dict[str, Any]], event: str, daemon: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [x for x in logs if x.get("event") == event]
        if found:
            return found[0]
        if daemon.poll() is not None:
            raise AssertionError(f"the daemon ended before logging {event!r}")
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} within 60 s")


def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the venue's clock did not get there"
        time.sleep(0.05)


def _handled_all(health: str, bars: int, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) until the daemon has handled ``bars`` timestamps; a bar
    that is really lost still fails the cell's count, only later."""
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(OSError):  # the daemon ended: its summary tells
        while _readyz(health).get("timestamps", 0) < bars and time.monotonic() < deadline:
            time.sleep(0.05)


def _readyz(health: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{health}/readyz", timeout=5) as answer:
            body: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read())
    return body
