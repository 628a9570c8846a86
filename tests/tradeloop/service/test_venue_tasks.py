"""The live daemon's money tasks, one pass at a time, against the in-process venue: the
reconcile loop re-reads the instrument rules when due (and keeps the old ones when the venue
fails), the execution stream books order updates as well as fills, the sender journals only
when there was something to do, and the last step at shutdown leaves the book the venue's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import structlog
from structlog.testing import capture_logs

from tests.tradeloop.fake_venue import FakeVenue, RulesVenue, cid
from tradeloop.broker.instruments import InstrumentRules
from tradeloop.broker.live import LiveBroker
from tradeloop.errors import ConnectionLostError
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.service.tasks import TaskHandle
from tradeloop.service.venue_tasks import VenueTasks
from tradeloop.venue import Execution, VenueOrderState


def tasks_for(broker: LiveBroker, commits: list[int], **options: Any) -> VenueTasks:
    async def check(since_ns: int) -> list[str]:
        return []

    settings: dict[str, Any] = {"reconcile_every_s": 60.0, "instruments_refresh_s": 0.0}
    settings.update(options)
    return VenueTasks(
        broker, lambda: commits.append(1), check, log=structlog.get_logger(), **settings
    )


async def test_reconcile_pass_rereads_the_rules_when_due_and_keeps_them_on_failure() -> None:
    old = InstrumentRules("A", qty_step=Decimal("0.1"))
    new = InstrumentRules("A", qty_step=Decimal("0.01"))
    venue = RulesVenue({"A": old})
    broker = LiveBroker(venue, 10_000.0, fractional=True, client_id=cid)
    await broker.load_instruments(["A"])
    commits: list[int] = []
    tasks = tasks_for(broker, commits, assets=["A"])
    venue.rules = {"A": new}  # the venue changed its step
    await tasks.reconcile_once()
    assert broker.book.instruments["A"] == new
    assert commits == [1]  # what reconciliation adopted is journaled at once

    async def down(asset_ids: Any) -> dict[str, InstrumentRules]:
        raise ConnectionLostError("GET /api/v3/exchangeInfo: HTTP 503")

    venue.instruments = down  # type: ignore[method-assign]
    with capture_logs() as logs:
        await tasks.reconcile_once()
    assert broker.book.instruments["A"] == new  # kept
    failed = [x for x in logs if x["event"] == "instruments_refresh_failed"]
    assert failed[0]["error"] == "GET /api/v3/exchangeInfo: HTTP 503"


class _Updates(FakeVenue):
    """A stream with an order update (the venue expired an order), then a fill."""

    async def executions(self) -> AsyncIterator[Execution | VenueOrderState]:
        yield VenueOrderState("cid1", "v1", "A", Side.BUY, 1, OrderStatus.EXPIRED)
        yield self.trades[0]


async def test_execution_stream_books_order_updates_and_fills() -> None:
    venue = _Updates()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    expiring = broker.submit("A", Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=9.0)
    filling = broker.submit("A", Side.BUY, 2)
    await broker.send()
    venue.fill("cid2", "t1", 2, 10.0, 0.0)
    commits: list[int] = []
    await tasks_for(broker, commits, settle_s=0.0).execution_stream(TaskHandle("stream"))
    assert expiring.status is OrderStatus.EXPIRED
    assert expiring.message == "expired at the venue"
    assert filling.status is OrderStatus.FILLED
    assert commits == [1, 1]  # journaled after each


async def test_sender_journals_only_when_there_was_work() -> None:
    venue = FakeVenue()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    commits: list[int] = []
    tasks = tasks_for(broker, commits)
    await tasks.send_once()
    assert commits == []  # nothing to send, nothing unknown: no write
    broker.submit("A", Side.BUY, 1)
    await tasks.send_once()
    assert venue.submitted == ["cid1"]
    assert commits == [1]


class _FillsAtOnce(FakeVenue):
    """A market order fills as it is taken; the fill is only in REST (no stream runs)."""

    async def submit(self, order: Any) -> VenueOrderState:
        await super().submit(order)
        self.fill(order.client_order_id, f"t-{order.client_order_id}", order.qty, 10.0, 0.01)
        return self.book[order.client_order_id]


async def test_finish_at_shutdown_sends_the_last_order_and_books_its_fill_from_rest() -> None:
    """The flaky end of the live daemon test: the last bar's buy went out and filled at the
    venue after the execution stream was cancelled, and the book ended flat while the venue
    held it. ``finish`` (the daemon's last step) must leave the book equal to the venue:
    position 2, cash 10,000 − 2 × 10 − 0.01 = 9,979.99 (by hand)."""
    venue = _FillsAtOnce()
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    commits: list[int] = []
    tasks = tasks_for(broker, commits)
    broker.submit("A", Side.BUY, 2)  # decided at the last timestamp, journaled, not sent
    with capture_logs() as logs:
        assert await tasks.finish() == 1
    assert venue.submitted == ["cid1"]
    assert broker.position("A") == venue.positions["A"] == 2
    assert broker.cash == venue.cash == 9_979.99
    assert broker.orders[0].status is OrderStatus.FILLED
    assert commits == [1, 1]  # journaled after the send, and after the fill
    caught = [x for x in logs if x["event"] == "executions_caught_up"]
    assert caught == [{"event": "executions_caught_up", "fills": 1, "at": "shutdown",
                       "log_level": "info"}]  # fmt: skip
