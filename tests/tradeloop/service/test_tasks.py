"""The supervisor: a failure (or an end) is logged and restarted with jittered backoff and
counted; a task down past the deadline is lost (readiness names it) and, if it books money,
moves the gate; then every task of the daemon, each with a real fault injected into its
real body, is logged and restarted, never ended silently."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from tests.tradeloop.fake_venue import FakeVenue, cid
from tradeloop.broker.live import LiveBroker
from tradeloop.config import SupervisionSettings
from tradeloop.errors import ConfigError, ConnectionLostError, RateLimitError, VenueProtocolError
from tradeloop.events import BarMessage, OrderStatus, Reconnected, Side
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.control import Control
from tradeloop.service.tasks import Supervisor, TaskHandle
from tradeloop.service.venue_tasks import VenueTasks
from tradeloop.stream.pump import FeedPump
from tradeloop.stream.supervisor import SupervisedFeed
from tradeloop.venue import Execution, VenueOrderState

FAST = SupervisionSettings(base_backoff_s=0.01, max_backoff_s=0.05, restore_deadline_s=10.0)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [x for x in logs if x["event"] == name]


def flaky(failures: list[BaseException | None]) -> Callable[[TaskHandle], Awaitable[None]]:
    """A body that fails (or, for None, returns) with each of ``failures`` in turn, then works."""

    async def body(handle: TaskHandle) -> None:
        if handle.restarts < len(failures):
            failure = failures[handle.restarts]
            if failure is not None:
                raise failure
            return
        handle.restored()
        await asyncio.Event().wait()

    return body


async def test_a_failing_task_is_logged_restarted_with_backoff_and_counted() -> None:
    supervisor = Supervisor(FAST, seed=1)
    with capture_logs() as logs:
        supervisor.spawn("feed", flaky([RuntimeError("boom"), None]))
        await until(lambda: supervisor.restarts["feed"] == 2 and not supervisor.down())
        await supervisor.close()
    failed, ended = events(logs, "task_failed"), events(logs, "task_ended")
    assert [(x["task"], x["error"], x["error_type"]) for x in failed] == [
        ("feed", "RuntimeError: boom", "RuntimeError")
    ]
    assert ended[0]["error"] == "the task returned (a long-lived task must not end)"
    # the n-th failure in a row waits base × 2^(n-1), ±50 % jitter: 0.01 then 0.02
    assert 0.005 <= failed[0]["restart_in_s"] <= 0.015
    assert 0.01 <= ended[0]["restart_in_s"] <= 0.03
    restored = events(logs, "task_restored")
    assert [x["task"] for x in restored] == ["feed"]


async def test_a_rate_limited_task_waits_at_least_retry_after() -> None:
    supervisor = Supervisor(FAST, seed=1)
    with capture_logs() as logs:
        supervisor.spawn("stream", flaky([RateLimitError("429", retry_after_s=0.2)]))
        await until(lambda: supervisor.restarts["stream"] == 1)
        await supervisor.close()
    assert events(logs, "task_failed")[0]["restart_in_s"] == 0.2


@pytest.mark.parametrize(("action", "mode"), [("halt", "halted"), ("reduce_only", "reduce_only")])
async def test_a_money_task_down_past_the_deadline_is_lost_and_moves_the_gate(
    action: str, mode: str
) -> None:
    gate = PreTradeGate()
    settings = SupervisionSettings(0.01, 0.02, restore_deadline_s=0.15, on_task_lost=action)
    supervisor = Supervisor(settings, gate, seed=1)
    always = flaky([ConnectionLostError("user stream refused: -1021")] * 10_000)
    with capture_logs() as logs:
        supervisor.spawn("execution_stream", always, books_money=True)
        await until(lambda: bool(supervisor.lost()))
        await asyncio.sleep(0.1)  # it keeps failing (every 0.02 s): still lost, still "down for"
        await supervisor.close()
    why = supervisor.lost()["execution_stream"]
    down = r"down for [0-9.]+ s \(ConnectionLostError: user stream refused: -1021\)"
    assert re.fullmatch(down, why)  # how long it is down now
    assert gate.mode.value == mode
    assert re.fullmatch(f"task execution_stream lost: {down}", gate.reason)  # when it was lost
    assert gate.manual  # stays until the operator clears it
    assert events(logs, "task_lost")[0]["books_money"] is True


async def test_a_lost_task_that_books_no_money_leaves_the_gate_alone() -> None:
    gate = PreTradeGate()
    supervisor = Supervisor(SupervisionSettings(0.01, 0.02, restore_deadline_s=0.05), gate)
    supervisor.spawn("control_watcher", flaky([OSError("control.json unreadable")] * 10_000))
    await until(lambda: bool(supervisor.lost()))
    await supervisor.close()
    assert gate.mode is GateMode.NORMAL


async def test_a_config_error_is_lost_at_once_and_still_retried() -> None:
    gate = PreTradeGate()
    supervisor = Supervisor(SupervisionSettings(0.01, 0.02, restore_deadline_s=60.0), gate)
    failures: list[BaseException | None] = [ConfigError("-2015 invalid API key. Fix: ...")] * 2
    with capture_logs() as logs:
        supervisor.spawn("sender", flaky(failures), books_money=True)
        await until(lambda: bool(supervisor.lost()))
        assert gate.mode is GateMode.HALTED  # no waiting: time does not fix a bad key
        await until(lambda: not supervisor.down())  # the key was fixed: it works again
        await supervisor.close()
    assert supervisor.lost() == {}
    assert events(logs, "task_restored")[0]["was_lost"] is True
    assert gate.mode is GateMode.HALTED  # the operator clears it, not the supervisor


async def test_close_cancels_every_task_without_calling_it_a_failure() -> None:
    supervisor = Supervisor(FAST)
    with capture_logs() as logs:
        supervisor.spawn("a", flaky([]))
        supervisor.spawn("b", flaky([]))
        await asyncio.sleep(0.01)
        await supervisor.close()
    assert events(logs, "task_failed") == events(logs, "task_ended") == []
    with pytest.raises(ConfigError, match="a task named 'a' is already supervised"):
        supervisor.spawn("a", flaky([]))


# -- every task of the daemon, with a real fault in its real body ---------------------------


class _Bars:
    """A feed that sends bars 0, 1, then fails the first time; then 2, 3 (and stays open)."""

    def __init__(self) -> None:
        self.connections = 0

    async def messages(self) -> AsyncIterator[BarMessage]:
        self.connections += 1
        if self.connections == 1:
            for k in (0, 1):
                yield BarMessage("A", k, 1.0, 1.0, 1.0, 1.0, 1.0)
            raise RuntimeError("a bug in the feed")
        for k in (2, 3):
            yield BarMessage("A", k, 1.0, 1.0, 1.0, 1.0, 1.0)
        await asyncio.Event().wait()


class _DroppingVenue(FakeVenue):
    """The execution stream ends after its first fill (a documented error frame: raised)."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions = 0

    async def executions(self) -> AsyncIterator[Execution | VenueOrderState]:
        self.subscriptions += 1
        if self.subscriptions == 1:
            yield self.trades[0]
            raise VenueProtocolError('trade_updates: {"action":"error","data":{"code":500}}')
        await asyncio.Event().wait()
        yield self.trades[0]  # pragma: no cover


async def _bar_feed(supervisor: Supervisor, tmp_path: Path) -> Callable[[], bool]:
    pump = FeedPump(SupervisedFeed(_Bars(), stale_after_s=5.0))
    supervisor.spawn("bar_feed", pump.run)
    got: list[Any] = []

    async def read() -> None:
        async for message in pump.messages():
            got.append(message.ts_ns if isinstance(message, BarMessage) else message)

    reader = asyncio.create_task(read())
    supervisor.spawn("reader", lambda handle: reader)  # cancelled with the rest
    # the runtime sees bars 0, 1, the restart's marker, then 2, 3: nothing lost or doubled
    return lambda: got == [0, 1, Reconnected(1), 2, 3]


def _venue_tasks(venue: FakeVenue) -> tuple[LiveBroker, VenueTasks, list[int]]:
    broker = LiveBroker(venue, 10_000.0, client_id=cid)
    broker.marks["A"] = 10.0
    commits: list[int] = []

    async def check(since_ns: int) -> list[str]:
        await venue.snapshot()
        return []

    log = structlog.get_logger()
    tasks = VenueTasks(
        broker,
        lambda: commits.append(1),
        check,
        reconcile_every_s=0.01,
        instruments_refresh_s=3600,
        log=log,
        tick_s=0.01,
        settle_s=0.05,
    )
    return broker, tasks, commits


async def _execution_stream(supervisor: Supervisor, tmp_path: Path) -> Callable[[], bool]:
    venue = _DroppingVenue()
    broker, tasks, _ = _venue_tasks(venue)
    broker.submit("A", Side.BUY, 5)
    await broker.send()
    venue.fill("cid1", "t1", 2, 10.0, 0.0)
    venue.fill("cid1", "t2", 3, 10.0, 0.0)  # the stream dies before it reports this one
    supervisor.spawn("execution_stream", tasks.execution_stream, books_money=True)
    # restarted: subscribed again, and t2 came from the REST catch-up
    return lambda: venue.subscriptions == 2 and broker.trade_ids == ["t1", "t2"]


async def _reconcile_loop(supervisor: Supervisor, tmp_path: Path) -> Callable[[], bool]:
    venue = FakeVenue()
    _, tasks, _ = _venue_tasks(venue)
    calls = [0]
    real = venue.snapshot

    async def snapshot() -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionLostError("GET /api/v3/account: HTTP 503")
        return await real()

    venue.snapshot = snapshot  # type: ignore[method-assign]
    supervisor.spawn("reconcile_loop", tasks.reconcile_loop, books_money=True)
    return lambda: calls[0] >= 2


async def _sender(supervisor: Supervisor, tmp_path: Path) -> Callable[[], bool]:
    venue = FakeVenue()
    venue.faults = [RuntimeError("a bug in the adapter"), "after"]
    broker, tasks, _ = _venue_tasks(venue)
    first, second = broker.submit("A", Side.BUY, 1), broker.submit("A", Side.BUY, 2)
    venue.book["cid1"] = VenueOrderState("cid1", "v1", "A", Side.BUY, 1, OrderStatus.ACCEPTED)
    supervisor.spawn("sender", tasks.sender, books_money=True)
    # restarted: the order in flight was looked up (it exists), the next one went out once
    return lambda: (
        venue.submitted == ["cid1", "cid2"]
        and first.status is OrderStatus.ACCEPTED
        and second.status is OrderStatus.ACCEPTED
    )


async def _control_watcher(supervisor: Supervisor, tmp_path: Path) -> Callable[[], bool]:
    """The watcher's poll never raises on a file's content (it logs it: service.control), so
    the fault here is its poll failing outright twice (a bug, a dying disk); the supervisor
    restarts the watcher and the kill switch works again."""
    path = tmp_path / "control.json"
    gate = PreTradeGate()
    control = Control(path, gate, structlog.get_logger())
    poll, failures = control.poll, [2]

    def failing_poll() -> None:
        if failures[0]:
            failures[0] -= 1
            raise OSError("the disk went away")
        poll()

    control.poll = failing_poll  # type: ignore[method-assign]

    async def watch(handle: TaskHandle) -> None:
        if handle.restarts == 2:
            path.write_text('{"mode": "halted", "reason": "drill"}')
        await control.watch(handle, every_s=0.01)

    supervisor.spawn("control_watcher", watch)
    return lambda: gate.mode is GateMode.HALTED  # the kill switch works again


async def _health_server(supervisor: Supervisor, tmp_path: Path) -> Callable[[], bool]:
    """The server's own thread dies (its loop stopped under it): the publishing task sees it
    and raises, the supervisor restarts it, and the endpoints answer again on the same port."""
    from tradeloop import PaperBroker, Strategy
    from tradeloop.config import parse_config
    from tradeloop.runtime.live import LiveRuntime
    from tradeloop.service.health import start_health
    from tradeloop.stream.supervisor import SupervisedFeed
    from tradeloop.stream.websocket import WebSocketFeed

    raw = {"run": {"strategy": "m:S"}, "feed": {"url": "ws://127.0.0.1:9"}, "health": {"port": 0}}
    config = parse_config(raw, {}, "cfg")
    broker = PaperBroker(100_000.0)
    feed = SupervisedFeed(WebSocketFeed("ws://127.0.0.1:9"))
    runtime = LiveRuntime(feed, Strategy(), broker)
    server = await start_health(runtime, broker, feed, PreTradeGate(), config, supervisor)
    port = server.port

    async def run(handle: TaskHandle) -> None:
        if handle.restarts == 0:
            dying = server._loop
            asyncio.get_running_loop().call_later(
                0.05, lambda: dying.call_soon_threadsafe(dying.stop)
            )
        await server.run(handle, every_s=0.01)

    def answers() -> bool:
        import socket

        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    name = "health_server"
    supervisor.spawn(name, run)
    return lambda: (
        supervisor.restarts[name] >= 1
        and server._thread.is_alive()
        and server.port == port
        and answers()
    )


@pytest.mark.parametrize(
    ("task", "arrange"),
    [
        ("bar_feed", _bar_feed),
        ("execution_stream", _execution_stream),
        ("reconcile_loop", _reconcile_loop),
        ("sender", _sender),
        ("control_watcher", _control_watcher),
        ("health_server", _health_server),
    ],
)
async def test_every_daemon_task_failure_is_logged_and_restarted_never_silent(
    task: str,
    arrange: Callable[[Supervisor, Path], Awaitable[Callable[[], bool]]],
    tmp_path: Path,
) -> None:
    supervisor = Supervisor(FAST, PreTradeGate(), seed=3)
    with capture_logs() as logs:
        recovered = await arrange(supervisor, tmp_path)
        await until(recovered)
        await until(lambda: task not in supervisor.down())
        await supervisor.close()
    failed = [x for x in logs if x["event"] in ("task_failed", "task_ended")]
    assert failed, "the fault was not logged"
    assert {x["task"] for x in failed} == {task}
    assert supervisor.restarts[task] >= 1
    assert [x["task"] for x in events(logs, "task_restored")][:1] == [task]
