"""The pre-trade gate: each hard limit refuses exactly what it should, by hand-worked numbers;
the daily-loss stop and the manual modes, driven through the live runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from tradeloop import MarketEvent, Strategy
from tradeloop.broker.paper import PaperBroker
from tradeloop.broker.simulation import SimulationBroker
from tradeloop.errors import ConfigError
from tradeloop.events import BarMessage, Message, OrderStatus, OrderType, Side
from tradeloop.risk.gate import GateLimits, GateMode, PreTradeGate
from tradeloop.runtime.live import LiveRuntime

MIN_NS = 60 * 10**9
DAY_NS = 86_400 * 10**9
T0 = 1_700_006_400 * 10**9  # 2023-11-15 00:00 UTC, the start of a day


def gated(limits: GateLimits, marks: Mapping[str, float] | None = None) -> SimulationBroker:
    broker = SimulationBroker(100_000.0)
    broker.marks.update(marks or {"A": 100.0})
    PreTradeGate(limits).bind(broker)
    assert broker.gate is not None
    broker.gate.begin_timestamp(T0, list(broker.marks), wall_s=T0 / 1e9)  # type: ignore[attr-defined]
    return broker


def gate_of(broker: SimulationBroker) -> PreTradeGate:
    assert isinstance(broker.gate, PreTradeGate)
    return broker.gate


def test_order_size_and_notional_limits() -> None:
    broker = gated(GateLimits(max_order_qty=10, max_order_notional=500))
    assert broker.submit("A", Side.BUY, 5).status is OrderStatus.ACCEPTED  # 5 × 100 = 500
    refused = broker.submit("A", Side.BUY, 6)  # 600 > 500
    assert refused.status is OrderStatus.REJECTED
    assert refused.message == "gate max_order_notional: notional 600.00 > 500.00"
    # a limit order is valued at its limit: 6 × 80 = 480 passes, 6 × 90 = 540 does not
    assert broker.submit("A", Side.BUY, 6, order_type=OrderType.LIMIT, limit_price=80).is_open
    assert not broker.submit("A", Side.BUY, 6, order_type=OrderType.LIMIT, limit_price=90).is_open
    assert broker.submit("A", Side.BUY, 11, order_type=OrderType.LIMIT, limit_price=1).message == (
        "gate max_order_qty: qty 11 > 10"
    )
    assert gate_of(broker).rejections == {"max_order_notional": 2, "max_order_qty": 1}


def test_position_limits_count_working_orders_and_let_reductions_through() -> None:
    broker = gated(GateLimits(max_position_qty=10, max_position_notional=900))
    broker.portfolio.apply_fill("A", 12, 100.0, 0.0, T0)  # already over both limits
    assert broker.submit("A", Side.SELL, 2).is_open  # reducing always passes
    refused = broker.submit("A", Side.BUY, 1)  # 12 − 2 working + 1 = 11 > 10
    assert refused.message == "gate max_position_qty: position would be 11, limit 10"
    broker.cancel(broker.orders[0].id)
    broker.portfolio.apply_fill("A", -4, 100.0, 0.0, T0)  # now 8 held
    assert broker.submit("A", Side.BUY, 1).is_open  # 9 held+working: 900 ≤ 900
    assert broker.submit("A", Side.BUY, 1).message == (
        "gate max_position_notional: position would be worth 1,000.00, limit 900.00"
    )


def test_open_order_count_and_order_rate() -> None:
    broker = gated(GateLimits(max_open_orders=2), {"A": 100.0, "B": 50.0})
    assert broker.submit("A", Side.BUY, 1).is_open
    assert broker.submit("B", Side.BUY, 1).is_open
    assert (
        broker.submit("B", Side.BUY, 1).message == "gate max_open_orders: 2 orders already working"
    )

    broker = gated(GateLimits(max_orders_per_minute=3))
    gate = gate_of(broker)
    accepted = [broker.submit("A", Side.BUY, 1).is_open for _ in range(4)]
    assert accepted == [True, True, True, False]
    assert broker.orders[-1].message == "gate order_rate: more than 3 orders/minute"
    gate.begin_timestamp(T0 + MIN_NS, ["A"], wall_s=T0 / 1e9 + 59.0)  # still inside the minute
    assert not broker.submit("A", Side.BUY, 1).is_open
    gate.begin_timestamp(T0 + 2 * MIN_NS, ["A"], wall_s=T0 / 1e9 + 60.5)  # the first 3 aged out
    assert broker.submit("A", Side.BUY, 1).is_open


def test_price_band_against_the_last_close() -> None:
    broker = gated(GateLimits(price_band=0.05))
    limit = OrderType.LIMIT
    assert broker.submit("A", Side.BUY, 1, order_type=limit, limit_price=104.9).is_open
    assert broker.submit("A", Side.BUY, 1, order_type=limit, limit_price=95.0).is_open
    refused = broker.submit("A", Side.BUY, 1, order_type=limit, limit_price=106.0)
    assert refused.message == "gate price_band: limit 106 is +6.00% from the last close 100"
    stop = broker.submit("A", Side.SELL, 1, order_type=OrderType.STOP, stop_price=90.0)
    assert "gate price_band: stop 90 is -10.00%" in stop.message
    assert broker.submit("A", Side.BUY, 1).is_open  # market orders have no price to check


def test_stale_symbol_and_lagging_bar_refuse_new_exposure_only() -> None:
    broker = gated(GateLimits(stale_after_s=120), {"A": 100.0, "B": 50.0})
    broker.portfolio.apply_fill("B", 10, 50.0, 0.0, T0)
    gate = gate_of(broker)
    gate.begin_timestamp(T0 + 3 * MIN_NS, ["A"], wall_s=T0 / 1e9 + 180)  # B silent for 3 min
    assert broker.submit("A", Side.BUY, 1).is_open
    assert broker.submit("B", Side.BUY, 1).message == (
        "gate stale_data: last B bar is 180 s old (limit 120 s)"
    )
    assert broker.submit("B", Side.SELL, 10).is_open  # getting out is allowed

    broker = gated(GateLimits(max_bar_age_s=30))
    gate_of(broker).begin_timestamp(T0 + MIN_NS, ["A"], wall_s=T0 / 1e9 + 60 + 45)
    assert "gate stale_data: the bar in hand is 45.0 s behind the clock" in (
        broker.submit("A", Side.BUY, 1).message
    )


def test_manual_modes_cancel_what_they_forbid() -> None:
    broker = gated(GateLimits(), {"A": 100.0, "B": 50.0})
    broker.portfolio.apply_fill("A", 10, 100.0, 0.0, T0)
    gate = gate_of(broker)
    sell_a = broker.submit("A", Side.SELL, 4, order_type=OrderType.LIMIT, limit_price=120)
    buy_b = broker.submit("B", Side.BUY, 3, order_type=OrderType.LIMIT, limit_price=40)
    gate.set_mode("reduce_only", "operator")
    assert sell_a.is_open
    assert buy_b.status is OrderStatus.CANCELLED
    assert buy_b.message == "cancelled: reduce_only (operator)"
    assert broker.submit("A", Side.SELL, 6).is_open  # 10 − 4 working − 6 = 0: reduces
    assert broker.submit("A", Side.SELL, 1).message == (
        "gate reduce_only: reduce_only (operator)"
    )  # would go short
    gate.set_mode(GateMode.HALTED, "kill")
    assert not broker.open_orders()
    assert broker.submit("A", Side.SELL, 1).message == "gate halted: halted (kill)"
    gate.set_mode("normal", "resume")
    assert gate.mode is GateMode.NORMAL
    assert not gate.manual
    assert broker.submit("B", Side.BUY, 1).is_open


@pytest.mark.parametrize("cancel_protective", [False, True])
def test_halting_keeps_protective_exits_unless_configured_and_always_says_so(
    cancel_protective: bool,
) -> None:
    broker = gated(GateLimits(halt_cancels_protective=cancel_protective), {"A": 100.0, "B": 50.0})
    broker.portfolio.apply_fill("A", 10, 100.0, 0.0, T0)
    heard: list[tuple[int, str, str]] = []
    broker.order_listeners.append(lambda o: heard.append((o.id, o.status.value, o.message)))
    stop = broker.submit("A", Side.SELL, 4, order_type=OrderType.STOP, stop_price=90)
    named = broker.submit("A", Side.SELL, 2, order_type=OrderType.LIMIT, limit_price=95,
                          reason="protective_floor")  # fmt: skip
    target = broker.submit("A", Side.SELL, 3, order_type=OrderType.LIMIT, limit_price=120)
    entry = broker.submit("B", Side.BUY, 3, order_type=OrderType.LIMIT, limit_price=40)
    exit_ = broker.book.place_exit("A", 1, OrderType.LIMIT, "take_profit", None)  # a RiskManager's
    heard.clear()
    with capture_logs() as logs:
        gate_of(broker).set_mode(GateMode.HALTED, "kill")
    protective = [stop, named, exit_]
    assert target.status is entry.status is OrderStatus.CANCELLED  # not protective
    assert target.message == "cancelled: halted (kill)"
    if not cancel_protective:
        assert all(o.is_open for o in protective)
        kept = "kept working while halted: a protective exit"
        assert [(i, s, m) for i, s, m in heard if m == kept] == [
            (o.id, "accepted", kept) for o in protective
        ]  # on_order hears each one
        logged = [x["order_id"] for x in logs if x["event"] == "protective_exit_kept"]
        assert logged == [o.id for o in protective]
    else:
        assert all(o.status is OrderStatus.CANCELLED for o in protective)
        assert stop.message == (
            "cancelled: halted (kill); a protective exit (risk.halt_cancels_protective = true)"
        )
        assert (stop.id, "cancelled", stop.message) in heard
        logged = [x["order_id"] for x in logs if x["event"] == "protective_exit_cancelled"]
        assert logged == [o.id for o in protective]
    assert broker.submit("A", Side.SELL, 1).message == "gate halted: halted (kill)"


def test_a_stop_that_would_reverse_the_position_is_not_protective() -> None:
    broker = SimulationBroker(100_000.0, allow_short=True)
    broker.marks["A"] = 100.0
    gate = PreTradeGate()
    gate.bind(broker)
    broker.portfolio.apply_fill("A", 10, 100.0, 0.0, T0)
    flip = broker.submit("A", Side.SELL, 15, order_type=OrderType.STOP, stop_price=90)
    gate.set_mode(GateMode.HALTED, "kill")
    assert flip.status is OrderStatus.CANCELLED  # 15 > 10 held: it would open a short


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_order_qty = -1"):
        GateLimits(max_order_qty=-1)
    with pytest.raises(ConfigError, match="a fraction of the day's starting equity"):
        GateLimits(max_daily_loss=2.0)
    with pytest.raises(ConfigError, match='use "halt" or "reduce_only"'):
        GateLimits(max_daily_loss=0.1, daily_loss_action="flatten")


# -- the daily-loss stop through the runtime ----------------------------------------------


class Listed:
    def __init__(self, bars: list[tuple[int, float, float]]) -> None:
        self.bars = bars  # (ts_ns, open, close) of asset A; high/low span them

    async def messages(self) -> AsyncIterator[Message]:
        for ts_ns, open_, close in self.bars:
            yield BarMessage("A", ts_ns, open_, max(open_, close), min(open_, close), close, 1.0)


class Scripted(Strategy):
    """Buys what ``plan[bar number]`` says: quantities, or (qty, limit price) pairs."""

    def __init__(self, plan: dict[int, list[Any]]) -> None:
        super().__init__()
        self.plan = plan
        self.n = -1
        self.results: dict[int, list[Any]] = {}

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.n += 1
        self.results[self.n] = [
            self.buy(event.asset_id, step[0], limit=step[1])
            if isinstance(step, tuple)
            else self.buy(event.asset_id, step)
            for step in self.plan.get(self.n, [])
        ]


async def run_gated(
    bars: list[tuple[int, float, float]], plan: dict[int, list[Any]], limits: GateLimits
) -> tuple[LiveRuntime, Scripted, PaperBroker, PreTradeGate]:
    strategy, broker, gate = Scripted(plan), PaperBroker(100_000.0), PreTradeGate(limits)
    runtime = LiveRuntime(Listed(bars), strategy, broker, gate=gate, wall_clock=lambda: 0.0)
    await runtime.run()
    return runtime, strategy, broker, gate


async def test_daily_loss_halts_for_the_rest_of_the_day_and_resets_at_midnight() -> None:
    bars = [
        (T0, 100.0, 100.0),  # 0: buy 500 at market, 10 with a limit of 80
        (T0 + MIN_NS, 100.0, 95.0),  # 1: 500 filled at 100; the 95 close is −2.5 %: halt
        (T0 + 2 * MIN_NS, 95.0, 96.0),  # 2: buy refused (halted)
        (T0 + DAY_NS, 96.0, 96.0),  # 3: a new day: buy accepted
    ]
    plan = {0: [500, (10, 80.0)], 1: [1], 2: [1], 3: [1]}
    runtime, strategy, _broker, gate = await run_gated(bars, plan, GateLimits(max_daily_loss=0.02))
    working = strategy.results[0][1]
    assert working.status is OrderStatus.CANCELLED  # the trip cancels what was working
    assert working.message.startswith("cancelled: halted (daily loss -2.50% breached -2.00%")
    # bar 1's close is marked before the strategy runs, so its own order already meets the stop
    for refused in (strategy.results[1][0], strategy.results[2][0]):
        assert refused.message.startswith("gate daily_loss: halted (daily loss -2.50%")
    assert strategy.results[3][0].is_open
    # the new day started from the equity marked at the previous close: 100,000 − 500 × 4
    assert gate.day_start_equity == pytest.approx(98_000.0)
    assert gate.mode is GateMode.NORMAL
    assert gate.rejections == {"daily_loss": 2}
    assert runtime.state()["gate"]["day_start_equity"] == pytest.approx(98_000.0)


async def test_day_start_equity_survives_a_restart_mid_day() -> None:
    limits = GateLimits(max_daily_loss=0.02)
    first = [(T0, 100.0, 100.0), (T0 + MIN_NS, 100.0, 99.0)]
    runtime, _, broker, gate = await run_gated(first, {0: [500]}, limits)
    assert gate.day_start_equity == 100_000.0
    assert gate.mode is GateMode.NORMAL
    saved = runtime.state()
    # a new process: the broker is restored from its fills, the gate from the state
    broker2 = PaperBroker(100_000.0)
    broker2.restore(broker.orders, broker.fills, broker.reserved(), 0.0, dict(broker.marks))
    gate2 = PreTradeGate(limits)
    later = [(T0 + 2 * MIN_NS, 99.0, 95.8)]  # −2.1 % vs the day start, −1.6 % vs the restart
    runtime2 = LiveRuntime(
        Listed(later), Scripted({}), broker2, gate=gate2, resume={**saved, "last_ts_ns": T0}
    )
    await runtime2.run()
    assert gate2.day_start_equity == 100_000.0  # not the equity at the restart
    assert gate2.daily_loss_tripped
    assert gate2.mode is GateMode.HALTED
