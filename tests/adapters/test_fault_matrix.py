"""The fault matrix: every fault injected at the daemon task it hits, with ``tradeloop live``
as a subprocess trading on the fake Binance or the fake Alpaca (``fault_venues``, through a
FaultProxy on 127.0.0.1). Whatever
the fault: the book ends as the venue's, no position goes beyond what the strategy holds at
most, nothing is posted twice, the fault is logged, and the gate ends where the config says.
``make soak`` runs the same cells over a longer clock (``-m soak``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.fault_matrix import Fault, events, run_with_fault
from tests.adapters.fault_proxy import FaultProxy

TASKS = (
    "bar_feed",
    "execution_stream",
    "reconcile_loop",
    "sender",
    "control_watcher",
    "health_server",
)


def _clock_skew(request: dict[str, Any]) -> dict[str, Any]:
    """A refused re-subscribe, as the WebSocket API answers it after clock drift."""
    return {
        "id": request.get("id"),
        "status": 400,
        "error": {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
    }


async def _feed_drop(proxy: FaultProxy, fake: Any) -> None:
    await proxy.drop("/stream")


async def _backfill_429(proxy: FaultProxy, fake: Any) -> None:
    proxy.fail("GET", "/api/v3/klines", 429, count=2, **{"Retry-After": "1"})
    await proxy.drop("/stream")


async def _stream_drop_refused(proxy: FaultProxy, fake: Any) -> None:
    proxy.refuse("/ws-api/v3", 2, _clock_skew)
    await proxy.drop("/ws-api/v3")


async def _stream_lost(proxy: FaultProxy, fake: Any) -> None:
    proxy.refuse("/ws-api/v3", 1_000_000, _clock_skew)
    await proxy.drop("/ws-api/v3")


async def _account_503(proxy: FaultProxy, fake: Any) -> None:
    proxy.fail("GET", "/api/v3/account", 503, count=2)


async def _order_500_after_accept(proxy: FaultProxy, fake: Any) -> None:
    proxy.fail_after("POST", "/api/v3/order", 500, count=2)


# -- Alpaca (https://docs.alpaca.markets/docs/websocket-streaming#error-messages: the
#    trade_updates error frame, then the close; the REST answers of its error map) ----------


async def _alpaca_error_frame(proxy: FaultProxy, fake: Any) -> None:
    """The issue's headline fault: one documented trade_updates error frame, then the close."""
    listeners = len(fake._trade_clients)
    await fake.trade_error("internal server error")
    proxy.injected.append(f"error frame on trade_updates ({listeners} listeners)")


def _alpaca_error_answer(request: dict[str, Any]) -> dict[str, Any]:
    """Every (re)authentication answered with the error frame: trade_updates stays down."""
    return {"action": "error", "data": {"error_message": "internal server error"}}


async def _alpaca_stream_lost(proxy: FaultProxy, fake: Any) -> None:
    proxy.refuse("/stream", 1_000_000, _alpaca_error_answer)
    await _alpaca_error_frame(proxy, fake)


async def _alpaca_data_drop(proxy: FaultProxy, fake: Any) -> None:
    await proxy.drop("/v2/iex")


async def _alpaca_account_503(proxy: FaultProxy, fake: Any) -> None:
    proxy.fail("GET", "/v2/account", 503, count=4)  # a read is tried 3 times: the 4th fails too


async def _alpaca_order_500_after_accept(proxy: FaultProxy, fake: Any) -> None:
    proxy.fail_after("POST", "/v2/orders", 500, count=2)


DROP = r"drop {} \([1-9][0-9]* sockets\)"  # at least one socket was open and closed
REFUSED = r"refused userDataStream\.subscribe\.signature on /ws-api/v3"

MATRIX = {
    "feed drop": Fault(
        "bar_feed",
        _feed_drop,
        logged=("feed_reconnecting",),
        injected=((DROP.format("/stream"), 1),),
    ),
    "backfill 429": Fault(
        "bar_feed",
        _backfill_429,
        logged=("feed_rate_limited",),
        injected=((r"GET /api/v3/klines -> 429", 2), (DROP.format("/stream"), 1)),
        bars=60,
    ),
    # the adapter's executions() raises at the drop and at each refused subscribe; the
    # supervisor calls it again (3 failures), it subscribes and catches up over REST
    "execution stream drop, re-subscribe refused": Fault(
        "execution_stream",
        _stream_drop_refused,
        logged=("task_failed", "executions_caught_up", "task_restored"),
        injected=((DROP.format("/ws-api/v3"), 1), (REFUSED, 2)),
        restored=True,
    ),
    "reconcile REST 503": Fault(
        "reconcile_loop",
        _account_503,
        logged=("task_failed", "task_restored"),
        injected=((r"GET /api/v3/account -> 503", 2),),
        restored=True,
    ),
    # the venue took both orders; their answers were lost in a 500: looked up, never resent
    "sender 5xx after accept": Fault(
        "sender",
        _order_500_after_accept,
        logged=("order_outcome_unknown",),
        injected=((r"POST /api/v3/order -> 200 then 500", 2),),
    ),
    "execution stream lost past the deadline": Fault(
        "execution_stream",
        _stream_lost,
        logged=("task_failed", "task_lost", "gate_mode_changed"),
        injected=((DROP.format("/ws-api/v3"), 1), (REFUSED, 2)),
        gate="halted",
        restore_deadline_s=1.0,
        tasks_lost=("execution_stream",),
    ),
    # the data stream's sockets closed under the daemon (the market data WebSocket's close,
    # https://docs.alpaca.markets/docs/streaming-market-data): reconnect, re-authenticate,
    # re-subscribe, and backfill the minutes between over GET /v2/stocks/bars
    "alpaca: data stream drop": Fault(
        "bar_feed",
        _alpaca_data_drop,
        logged=("feed_reconnecting",),
        injected=((DROP.format("/v2/iex"), 1),),
        venue="alpaca",
    ),
    "alpaca: trade_updates error frame": Fault(
        "execution_stream",
        _alpaca_error_frame,
        logged=("task_failed", "executions_caught_up", "task_restored"),
        injected=((r"error frame on trade_updates \(1 listeners\)", 1),),
        restored=True,
        venue="alpaca",
    ),
    "alpaca: reconcile REST 503": Fault(
        "reconcile_loop",
        _alpaca_account_503,
        logged=("task_failed", "task_restored"),
        injected=((r"GET /v2/account -> 503", 4),),
        restored=True,
        venue="alpaca",
    ),
    "alpaca: order 5xx after accept": Fault(
        "sender",
        _alpaca_order_500_after_accept,
        logged=("order_outcome_unknown",),
        injected=((r"POST /v2/orders -> 200 then 500", 2),),
        venue="alpaca",
    ),
    "alpaca: trade_updates lost past the deadline": Fault(
        "execution_stream",
        _alpaca_stream_lost,
        logged=("task_failed", "task_lost", "gate_mode_changed"),
        injected=(
            (r"error frame on trade_updates \(1 listeners\)", 1),
            (r"refused auth on /stream", 2),
        ),
        gate="halted",
        restore_deadline_s=1.0,
        tasks_lost=("execution_stream",),
        venue="alpaca",
    ),
}


def _check(run: Any, fault: Fault) -> None:
    for pattern, times in fault.injected:  # the cell injected the fault it claims
        done = [x for x in run.injected if re.fullmatch(pattern, x)]
        assert len(done) >= times, (pattern, run.injected)
    missing = [name for name in fault.logged if not events(run, name)]
    assert not missing, f"{missing} not in the log"
    named = {x.get("task") for x in events(run, "task_failed") + events(run, "task_lost")}
    assert named <= {fault.task}, f"a fault at {fault.task} failed {named}"
    if fault.restored:
        assert {x.get("task") for x in events(run, "task_restored")} == {fault.task}
    assert run.summary["gate_mode"] == fault.gate, run.summary["gate_reason"]
    lost = run.ready_during[-1].get("tasks_lost", {})
    assert sorted(lost) == sorted(fault.tasks_lost)
    for task in TASKS:  # every task is supervised and counted
        assert f'tradeloop_task_restarts_total{{task="{task}"}}' in run.metrics


@pytest.mark.parametrize("cell", list(MATRIX))
def test_fault_matrix_book_matches_the_venue_after_each_fault(cell: str, tmp_path: Path) -> None:
    fault = MATRIX[cell]
    run = run_with_fault(tmp_path, fault, bars=fault.bars)
    _check(run, fault)
    if fault.task == "bar_feed":
        assert run.summary["timestamps"] == fault.bars  # every bar once, the gap backfilled
        assert run.summary["feed_backfilled"] > 0
    if fault.gate == "halted":
        assert run.summary["gate_reason"].startswith("task execution_stream lost: down for ")


@pytest.mark.soak
@pytest.mark.parametrize("cell", list(MATRIX))
def test_soak_fault_matrix_over_a_long_clock(cell: str, tmp_path: Path) -> None:
    fault = MATRIX[cell]
    fault.at_bar = 100
    run = run_with_fault(tmp_path, fault, bars=600, interval_s=0.05)
    _check(run, fault)
