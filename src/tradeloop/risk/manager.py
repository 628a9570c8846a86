"""RiskManager: protective exits and portfolio guards around any strategy. Pure: no I/O.

Each timestamp, after open orders have filled at the open and before the strategy runs, every
held position with a bar is checked. Its rules see a ``RiskContext`` as of the previous bar
and return levels; the bar is then read as an exchange would see it:

1. an exit-now decision (e.g. ``TimeBasedExit``) fills at the open;
2. a stop (or target) the open has already crossed fills at the open (a gap);
3. a stop inside [low, high] fills at the stop; else a target inside it fills at the target.
   If one bar reaches both, the stop is taken: the bar cannot say which came first, and the
   worse outcome is the honest assumption.

Exits carry their rule's name into fills and trades (``exit_reason``). The strategy then sees
the resulting positions. An exit first cancels the strategy's resting exit orders for that
asset (open orders on the reducing side: a stale stop, a target, a bracket's legs), each with
the message ``risk exit <rule> closed the position`` that ``on_order`` hears; orders that add
to the position stay. ``RiskManager(cancel_resting_exits=False)`` keeps them (they then may
open a position the other way, if shorting is allowed, or be refused when they fill).

Guards (``MaxPositionSize``, ``MaxExposure``, ``MaxDrawdownHalt``)
check orders that add exposure when they are submitted. State is kept only for open positions
(and features only for assets with a position or an open order), so it never grows with the
length of a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tradeloop.broker.base import Holdings, RuntimeBroker
from tradeloop.broker.orders import net_remaining
from tradeloop.clock import utc_datetime, utc_ns
from tradeloop.data.features import FeatureProvider
from tradeloop.errors import ConfigError
from tradeloop.events import Fill, OrderType, Side
from tradeloop.risk.context import RiskContext
from tradeloop.risk.decision import RiskDecision
from tradeloop.risk.guards import MaxDrawdownHalt, OrderCheck, PortfolioGuard
from tradeloop.risk.rules import RiskRule
from tradeloop.runtime.dispatch import BarBlock

__all__ = ["RiskManager"]

_EMPTY: Mapping[str, float] = {}
_HELD_NUMBERS = (
    "sign",
    "entry_price",
    "entry_bar_index",
    "high_water_mark",
    "low_water_mark",
    "last_close",
)


@dataclass(slots=True)
class _Held:
    """What the manager remembers about one open position."""

    sign: int
    entry_price: float
    entry_time: datetime
    entry_bar_index: int
    high_water_mark: float
    low_water_mark: float
    last_close: float
    features: Mapping[str, float]
    entry_features: Mapping[str, float]
    context: Mapping[str, Any]


class RiskManager:
    """Protective exit rules and portfolio guards, shared by backtest, paper and live runs.

    Rules read the asset's signals as the strategy saw them (bars joined with the run's
    features). ``feature_provider`` names where those features come from when the run is
    given none of its own: ``Engine(risk=RiskManager(provider))`` joins ``provider``'s features
    for the strategy and the rules alike.
    """

    def __init__(
        self, feature_provider: FeatureProvider | None = None, *, cancel_resting_exits: bool = True
    ) -> None:
        self.feature_provider = feature_provider
        self.cancel_resting_exits = cancel_resting_exits
        self.rules: list[RiskRule] = []
        self.guards: list[PortfolioGuard] = []
        self.exits: dict[str, int] = {}
        self.guard_messages: dict[str, int] = {}
        self._held: dict[str, _Held] = {}
        self._latest: dict[str, Mapping[str, float]] = {}
        self._context: Mapping[str, Any] = {}
        self._broker: RuntimeBroker | None = None
        self._peak = 0.0
        self._now: datetime | None = None

    def add_rule(self, rule: RiskRule | PortfolioGuard) -> RiskManager:
        """Add an exit rule (``evaluate``) or a portfolio guard (``allow``); returns self."""
        if isinstance(rule, RiskRule):
            self.rules.append(rule)
        elif isinstance(rule, PortfolioGuard):
            self.guards.append(rule)
        else:
            raise ConfigError(
                f"{rule!r} is neither a risk rule (name, priority, evaluate(ctx)) nor a "
                "portfolio guard (name, allow(check))"
            )
        return self

    @property
    def bound(self) -> bool:
        """Whether it has been attached to a run (it then holds that run's state)."""
        return self._broker is not None

    @property
    def halted_at(self) -> object:
        for guard in self.guards:
            if isinstance(guard, MaxDrawdownHalt) and guard.halted_at is not None:
                return guard.halted_at
        return None

    def bind(self, broker: RuntimeBroker) -> None:
        """Attach to a broker before a run: see its fills, check its new orders."""
        self._broker = broker
        self._peak = broker.initial_cash
        broker.fill_listeners.insert(0, self._on_fill)
        if self.guards:
            broker.pre_trade_checks.append(self._allow)

    # -- across a restart ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """JSON-able state a restarted daemon restores (``restore``): what each watched
        position's rules will see next, the exits counted, the drawdown peak and halt."""
        return {
            "held": {
                asset_id: {
                    **{k: getattr(h, k) for k in _HELD_NUMBERS},
                    "entry_ts_ns": utc_ns(h.entry_time),
                    "features": dict(h.features),
                    "entry_features": dict(h.entry_features),
                    "context": dict(h.context),
                }
                for asset_id, h in self._held.items()
            },
            "latest": {asset_id: dict(f) for asset_id, f in self._latest.items()},
            "context": dict(self._context),
            "peak": self._peak,
            "exits": dict(self.exits),
            "guard_messages": dict(self.guard_messages),
            "halted_at_ns": [
                utc_ns(g.halted_at) if isinstance(g.halted_at, datetime) else None
                for g in self.guards
                if isinstance(g, MaxDrawdownHalt)
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what ``state()`` saved (after ``bind``)."""
        if not state:
            return
        self._held = {
            asset_id: _Held(
                **{k: saved[k] for k in _HELD_NUMBERS},
                entry_time=utc_datetime(int(saved["entry_ts_ns"])),
                features=saved["features"],
                entry_features=saved["entry_features"],
                context=saved["context"],
            )
            for asset_id, saved in state.get("held", {}).items()
        }
        self._latest = dict(state.get("latest", {}))
        self._context = dict(state.get("context", {}))
        self._peak = float(state.get("peak", self._peak))
        self.exits = dict(state.get("exits", {}))
        self.guard_messages = dict(state.get("guard_messages", {}))
        halts = [g for g in self.guards if isinstance(g, MaxDrawdownHalt)]
        for guard, when in zip(halts, state.get("halted_at_ns", []), strict=False):
            guard.halted_at = None if when is None else utc_datetime(int(when))

    # -- per timestamp ------------------------------------------------------------------------

    def check(self, block: BarBlock) -> None:
        """Exit positions whose rules fire on this timestamp's bars (before the strategy)."""
        self._now = block.timestamp
        if not self._held or not self.rules:
            return
        broker = self._require_broker()
        timestamp = block.timestamp
        assert timestamp is not None
        for asset_id, held in list(self._held.items()):
            bar = block.bar(asset_id)
            if bar is None:
                continue
            open_, high, low = bar[0], bar[1], bar[2]
            long = held.sign > 0
            ctx = RiskContext(
                asset_id=asset_id,
                timestamp=timestamp,
                qty=broker.position(asset_id),
                entry_price=held.entry_price,
                entry_time=held.entry_time,
                bars_held=bar[5] - held.entry_bar_index,
                high_water_mark=held.high_water_mark,
                low_water_mark=held.low_water_mark,
                last_close=held.last_close,
                features=held.features,
                entry_features=held.entry_features,
                context=held.context,
            )
            plan = RiskDecision.merge((rule.evaluate(ctx) for rule in self.rules), long=long)
            at_open: list[tuple[int, str, OrderType]] = []
            if plan.exit_reason is not None:
                at_open.append((plan.exit_priority, plan.exit_reason, OrderType.MARKET))
            stop, target = plan.stop_price, plan.take_profit_price
            if stop is not None and (open_ <= stop if long else open_ >= stop):
                at_open.append((plan.stop_priority, plan.stop_reason, OrderType.STOP))
            if target is not None and (open_ >= target if long else open_ <= target):
                at_open.append(
                    (plan.take_profit_priority, plan.take_profit_reason, OrderType.LIMIT)
                )
            if at_open:
                _, reason, kind = max(at_open, key=lambda item: item[0])
                self._exit(broker, asset_id, open_, reason, kind, bar)
            elif stop is not None and (low <= stop if long else high >= stop):
                self._exit(broker, asset_id, stop, plan.stop_reason, OrderType.STOP, bar)
            elif target is not None and (high >= target if long else low <= target):
                self._exit(broker, asset_id, target, plan.take_profit_reason, OrderType.LIMIT, bar)

    def record(self, block: BarBlock, context: Mapping[str, Any]) -> None:
        """After the timestamp: remember each open position's bar, features and context."""
        broker = self._require_broker()
        self._context = context
        timestamp = block.timestamp
        assert timestamp is not None
        for guard in self.guards:
            if isinstance(guard, MaxDrawdownHalt):
                equity = broker.equity()
                self._peak = max(self._peak, equity)
                guard.trip(equity / self._peak - 1.0 if self._peak > 0 else 0.0, timestamp)
        watched = set(self._held)
        watched.update(order.asset_id for order in broker.open_orders())
        for asset_id in watched:
            bar = block.bar(asset_id)
            if bar is None:
                continue
            features = block.signals_of(asset_id)
            self._latest[asset_id] = features
            held = self._held.get(asset_id)
            if held is not None:
                held.high_water_mark = max(held.high_water_mark, bar[1])
                held.low_water_mark = min(held.low_water_mark, bar[2])
                held.last_close = bar[3]
                held.features = features
                held.context = context
        for asset_id in [a for a in self._latest if a not in watched]:
            del self._latest[asset_id]

    # -- hooks ---------------------------------------------------------------------------------

    def _on_fill(self, fill: Fill) -> None:
        broker = self._require_broker()
        position = broker.positions().get(fill.asset_id)
        held = self._held.get(fill.asset_id)
        if position is None:
            self._held.pop(fill.asset_id, None)
            return
        sign = 1 if position.qty > 0 else -1
        if held is None or held.sign != sign:
            features = self._latest.get(fill.asset_id, _EMPTY)
            self._held[fill.asset_id] = _Held(
                sign=sign,
                entry_price=position.avg_price,
                entry_time=fill.timestamp,
                entry_bar_index=fill.bar_index,
                high_water_mark=fill.price,
                low_water_mark=fill.price,
                last_close=fill.price,
                features=features,
                entry_features=features,
                context=self._context,
            )
        else:
            held.entry_price = position.avg_price  # scaling in moves the reference price

    def _allow(
        self, broker: Holdings, asset_id: str, side: Side, qty: float, price: float
    ) -> tuple[float, str]:
        sign = 1 if side is Side.BUY else -1
        pending = net_remaining(broker.open_orders(asset_id))
        position = broker.position(asset_id) + pending
        reducing = min(qty, max(-sign * position, 0.0))
        adding = qty - reducing
        if adding <= 0:
            return qty, ""
        equity, gross = broker.valuation()
        gross += sum(o.remaining * (broker.mark(o.asset_id) or 0.0) for o in broker.open_orders())
        check = OrderCheck(
            asset_id=asset_id,
            side_sign=sign,
            qty=adding,
            price=price,
            position=position if reducing == 0 else 0.0,
            equity=equity,
            gross_exposure=gross,
            drawdown=equity / self._peak - 1.0 if self._peak > 0 else 0.0,
            fractional=broker.fractional,
            timestamp=self._now,
        )
        messages = []
        for guard in self.guards:
            allowed, message = guard.allow(check)
            if message:
                messages.append(message)
                self.guard_messages[guard.name] = self.guard_messages.get(guard.name, 0) + 1
            if allowed < check.qty:
                check = dataclasses.replace(check, qty=allowed)
        return reducing + check.qty, "; ".join(messages)

    # -- internals ---------------------------------------------------------------------------

    def _exit(
        self,
        broker: RuntimeBroker,
        asset_id: str,
        price: float,
        reason: str,
        kind: OrderType,
        bar: tuple[float, float, float, float, float, int],
    ) -> None:
        self.exits[reason] = self.exits.get(reason, 0) + 1
        if self.cancel_resting_exits:
            _cancel_resting_exits(broker, asset_id, reason)
        broker.exit_position(asset_id, price, reason, kind, bar)

    def _require_broker(self) -> RuntimeBroker:
        if self._broker is None:
            raise ConfigError("RiskManager is not bound to a broker; pass it as Engine(risk=...)")
        return self._broker


def _cancel_resting_exits(broker: RuntimeBroker, asset_id: str, reason: str) -> None:
    """Cancel the open orders that would reduce ``asset_id``'s position: the risk exit closes
    it, and a stale exit left working would trade a position that is no longer there."""
    held = broker.position(asset_id)
    reducing = Side.SELL if held > 0 else Side.BUY
    for order in broker.open_orders(asset_id):
        if order.side is reducing:
            broker.cancel(order.id, f"risk exit {reason} closed the position")
