"""The pre-trade gate of a paper or live run: hard limits every order must pass, and the
kill switch. Pure: the runtime feeds it the time; it never sleeps or reads a clock itself.

Unlike the portfolio guards (which size orders down), the gate only says yes or no, and a
"no" is a rejected order with the rule's name in its message, counted per rule. It checks,
in this order:

- the mode: ``halted`` refuses every order; ``reduce_only`` refuses any order that would
  leave a position larger in size (after the orders already working on that asset);
- ``max_order_qty`` and ``max_order_notional`` (qty × the order's price: limit, stop, or the
  last close for a market order);
- ``max_position_qty`` / ``max_position_notional``: the asset's position after this order
  and every order already working on it;
- ``max_open_orders`` across the account, and ``max_orders_per_minute`` (a sliding
  minute of the runtime's wall clock);
- ``price_band``: a limit or stop price further than this fraction from the last close;
- ``stale_after_s``: the asset's last bar is older than the current timestamp by more than
  this (a symbol that stopped trading); ``max_bar_age_s``: the current bar is older than
  the wall clock by more than this (a backfill catching up). Both refuse orders that add
  exposure and let reducing ones through;
- ``max_daily_loss``: equity below the day's starting equity by more than this fraction
  trips the kill switch (``daily_loss_action``: ``"halt"`` or ``"reduce_only"``) until
  the next UTC day. The day's starting equity is part of ``state()``, which the journal
  persists, so a restart mid-day does not reset it.

A manual kill (``tradeloop kill``, or SIGUSR1 to the daemon) sets ``halted`` until it is
cleared. What entering a mode cancels:

- ``reduce_only``: the working orders that add exposure; reducing ones keep working;
- ``halted``: every working order EXCEPT protective exits, which keep protecting the
  positions they close. A protective exit reduces its position without reversing it and is
  a stop or stop-limit order, an order whose reason starts with ``stop`` or ``protective``,
  or an exit placed by a ``RiskManager`` (``OrderBook.protective``). Each one kept is logged
  (``protective_exit_kept``) and its ``on_order`` hears it (the message says it works on).
  With ``halt_cancels_protective = true`` they are cancelled too, and that is logged
  (``protective_exit_cancelled``) and in the message ``on_order`` hears.

While halted, every new order is refused, the strategy's protective ones included; the
exits of a ``RiskManager`` (stops, targets, time exits) still close positions in every mode:
they only ever reduce, and they do not pass the gate.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from tradeloop.broker.base import Holdings, RuntimeBroker
from tradeloop.broker.orders import Order, net_remaining
from tradeloop.errors import ConfigError
from tradeloop.events import OrderType, Side

__all__ = ["PROTECTIVE_REASONS", "GateLimits", "GateMode", "PreTradeGate", "is_protective"]

# an order whose reason starts with one of these is a protective exit (if it only reduces)
PROTECTIVE_REASONS = ("stop", "protective")

_DAY_NS = 86_400 * 10**9


class GateMode(StrEnum):
    NORMAL = "normal"
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"


_ACTIONS = {"halt": GateMode.HALTED, "reduce_only": GateMode.REDUCE_ONLY}
_NOT_LIMITS = ("daily_loss_action", "reduce_only", "halt_cancels_protective")


@dataclass(frozen=True, slots=True)
class GateLimits:
    """Every limit is off (``None``) unless set."""

    max_order_qty: float | None = None
    max_order_notional: float | None = None
    max_position_qty: float | None = None
    max_position_notional: float | None = None
    max_open_orders: int | None = None
    max_orders_per_minute: int | None = None
    price_band: float | None = None
    stale_after_s: float | None = None
    max_bar_age_s: float | None = None
    max_daily_loss: float | None = None
    daily_loss_action: str = "halt"
    reduce_only: bool = False
    halt_cancels_protective: bool = False

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _NOT_LIMITS or value is None:
                continue
            if isinstance(value, bool) or not (math.isfinite(value) and value > 0):
                raise ConfigError(f"risk.{item.name} = {value!r}: must be a positive number")
        if self.max_daily_loss is not None and self.max_daily_loss >= 1:
            raise ConfigError(
                f"risk.max_daily_loss = {self.max_daily_loss}: a fraction of the day's starting "
                "equity, e.g. 0.02 for 2 %"
            )
        if self.daily_loss_action not in _ACTIONS:
            raise ConfigError(
                f'risk.daily_loss_action = {self.daily_loss_action!r}: use "halt" or "reduce_only"'
            )


class PreTradeGate:
    """Bind to a broker with ``bind``; the broker asks ``review`` before accepting an order."""

    def __init__(self, limits: GateLimits | None = None) -> None:
        self.limits = limits or GateLimits()
        self.base_mode = GateMode.REDUCE_ONLY if self.limits.reduce_only else GateMode.NORMAL
        self.mode = self.base_mode
        self.reason = ""
        self.manual = False  # a manual mode stays until cleared
        self.daily_loss_tripped = False  # until the next UTC day
        self.rejections: Counter[str] = Counter()
        self.day: int | None = None
        self.day_start_equity: float | None = None
        self.broker: RuntimeBroker | None = None
        self._wall_s = 0.0
        self._ts_ns = 0
        self._last_bar_ns: dict[str, int] = {}
        self._recent: deque[float] = deque()
        self._loss_checked: tuple[int, int] = (-1, -1)

    def bind(self, broker: RuntimeBroker) -> None:
        self.broker = broker
        broker.book.gate = self

    # -- what the runtime feeds it -------------------------------------------------------

    def begin_timestamp(self, ts_ns: int, asset_ids: list[str], wall_s: float) -> None:
        """A new timestamp arrived (before any order of it): roll the day, note the bars."""
        self._ts_ns, self._wall_s = ts_ns, wall_s
        for asset_id in asset_ids:
            self._last_bar_ns[asset_id] = ts_ns
        day = ts_ns // _DAY_NS
        if day != self.day:
            self.day = day
            self.day_start_equity = None if self.broker is None else self.broker.equity()
            if self.daily_loss_tripped:
                self.daily_loss_tripped = False
                if not self.manual:
                    self._set(self.base_mode, "a new day: the daily-loss stop is reset")

    def end_timestamp(self) -> None:
        """After the timestamp's fills and marks: trip the daily-loss stop if it is breached."""
        self._check_daily_loss()

    def set_mode(self, mode: GateMode | str, reason: str) -> None:
        """The operator's switch: ``halted`` (a kill), ``reduce_only``, or ``normal`` to clear.

        A manual mode stays until cleared (a restart keeps it). Clearing after a daily-loss
        trip overrides the trip for the rest of that day.
        """
        mode = GateMode(mode)
        self.manual = mode is not GateMode.NORMAL
        self._set(mode if self.manual else self.base_mode, reason)

    # -- what the broker asks ---------------------------------------------------------------

    def review(self, broker: Holdings, order: Order) -> str:
        """ "" to accept ``order``, else why it is refused (``gate <rule>: ...``)."""
        limits = self.limits
        rule = message = ""
        self._check_daily_loss()
        held = broker.position(order.asset_id)
        working = net_remaining(broker.open_orders(order.asset_id))
        after = held + working + order.qty * order.side_sign
        adds = abs(after) > abs(held + working) + 1e-12
        price = _order_price(order, broker.mark(order.asset_id))
        if self.mode is GateMode.HALTED or (adds and self.mode is GateMode.REDUCE_ONLY):
            rule = "daily_loss" if self.daily_loss_tripped and not self.manual else self.mode.value
            message = f"{self.mode.value} ({self.reason})"
        elif limits.max_order_qty is not None and order.qty > limits.max_order_qty:
            rule, message = "max_order_qty", f"qty {order.qty:g} > {limits.max_order_qty:g}"
        elif (
            limits.max_order_notional is not None
            and price is not None
            and order.qty * price > limits.max_order_notional
        ):
            rule = "max_order_notional"
            message = f"notional {order.qty * price:,.2f} > {limits.max_order_notional:,.2f}"
        elif adds and limits.max_position_qty is not None and abs(after) > limits.max_position_qty:
            rule = "max_position_qty"
            message = f"position would be {after:g}, limit {limits.max_position_qty:g}"
        elif (
            adds
            and limits.max_position_notional is not None
            and price is not None
            and abs(after) * price > limits.max_position_notional
        ):
            rule = "max_position_notional"
            message = (
                f"position would be worth {abs(after) * price:,.2f}, "
                f"limit {limits.max_position_notional:,.2f}"
            )
        elif (
            limits.max_open_orders is not None
            and len(broker.open_orders()) >= limits.max_open_orders
        ):
            rule, message = "max_open_orders", f"{limits.max_open_orders} orders already working"
        elif limits.max_orders_per_minute is not None and self._rate_exceeded():
            rule, message = "order_rate", f"more than {limits.max_orders_per_minute} orders/minute"
        elif (band := self._outside_band(order, broker.mark(order.asset_id))) is not None:
            rule, message = "price_band", band
        elif adds and (stale := self._stale(order.asset_id)):
            rule, message = "stale_data", stale
        if rule:
            self.rejections[rule] += 1
            return f"gate {rule}: {message}"
        if limits.max_orders_per_minute is not None:
            self._recent.append(self._wall_s)
        return ""

    def state(self) -> dict[str, Any]:
        """What a restart must restore (journaled with every timestamp)."""
        return {
            "mode": self.mode.value,
            "reason": self.reason,
            "manual": self.manual,
            "daily_loss_tripped": self.daily_loss_tripped,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "limits": asdict(self.limits),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.mode = GateMode(state["mode"])
        self.reason = state["reason"]
        self.manual = state["manual"]
        self.daily_loss_tripped = state["daily_loss_tripped"]
        self.day = state["day"]
        self.day_start_equity = state["day_start_equity"]

    # -- internals ----------------------------------------------------------------------------

    def _set(self, mode: GateMode, reason: str) -> None:
        """Enter ``mode`` and cancel what it forbids (see the module docstring)."""
        self.mode, self.reason = mode, reason
        broker = self.broker
        if broker is None or mode is GateMode.NORMAL:
            return
        halted = mode is GateMode.HALTED
        cancel_protective = self.limits.halt_cancels_protective
        log = _logger()
        for order in broker.open_orders():
            held = broker.position(order.asset_id)
            if not (halted or _adds_exposure(order, held)):
                continue
            message = f"cancelled: {mode.value} ({reason})"
            if halted and is_protective(order, held, broker.book.protective):
                if not cancel_protective:
                    order.message = f"kept working while {mode.value}: a protective exit"
                    broker.book.tell(order)
                    log.warning(
                        "protective_exit_kept", order_id=order.id, asset=order.asset_id, mode=mode
                    )
                    continue
                message += "; a protective exit (risk.halt_cancels_protective = true)"
                log.warning("protective_exit_cancelled", order_id=order.id, asset=order.asset_id)
            broker.cancel(order.id, message)

    def _check_daily_loss(self) -> None:
        limit, start = self.limits.max_daily_loss, self.day_start_equity
        if self.daily_loss_tripped or limit is None or start is None or self.broker is None:
            return
        # equity moves with the marks (once per timestamp) and with fills: a rebalance's
        # hundreds of orders need one valuation, not one each
        checked = (self._ts_ns, len(self.broker.fills))
        if checked == self._loss_checked:
            return
        self._loss_checked = checked
        equity = self.broker.equity()
        if equity >= start * (1.0 - limit):
            return
        self.daily_loss_tripped = True
        if not self.manual:  # a manual mode is the operator's call; it stays
            self._set(
                _ACTIONS[self.limits.daily_loss_action],
                f"daily loss {equity / start - 1:.2%} breached -{limit:.2%} "
                f"(day start equity {start:,.2f}, now {equity:,.2f})",
            )

    def _rate_exceeded(self) -> bool:
        recent, horizon = self._recent, self._wall_s - 60.0
        while recent and recent[0] <= horizon:
            recent.popleft()
        assert self.limits.max_orders_per_minute is not None
        return len(recent) >= self.limits.max_orders_per_minute

    def _outside_band(self, order: Order, last: float | None) -> str | None:
        band = self.limits.price_band
        if band is None or order.order_type is OrderType.MARKET:
            return None
        if last is None:
            return "no last price to check the order's price against"
        for label, price in (("limit", order.limit_price), ("stop", order.stop_price)):
            if price is not None and abs(price / last - 1.0) > band + 1e-12:
                return f"{label} {price:g} is {price / last - 1:+.2%} from the last close {last:g}"
        return None

    def _stale(self, asset_id: str) -> str:
        limits = self.limits
        if limits.stale_after_s is not None:
            last = self._last_bar_ns.get(asset_id)
            if last is None:
                return f"no bar seen for {asset_id} yet"
            age_s = (self._ts_ns - last) / 1e9
            if age_s > limits.stale_after_s:
                return f"last {asset_id} bar is {age_s:g} s old (limit {limits.stale_after_s:g} s)"
        if limits.max_bar_age_s is not None and self._ts_ns:
            lag_s = self._wall_s - self._ts_ns / 1e9
            if lag_s > limits.max_bar_age_s:
                return f"the bar in hand is {lag_s:.1f} s behind the clock (catching up?)"
        return ""


def _logger() -> Any:
    """structlog, imported when a mode is entered: a backtest import stays without it."""
    import structlog

    return structlog.get_logger().bind(component="gate")


def _order_price(order: Order, last: float | None) -> float | None:
    if order.limit_price is not None:
        return order.limit_price
    if order.stop_price is not None:
        return order.stop_price
    return last


def is_protective(order: Order, held: float, placed_as_exits: set[int] | frozenset[int]) -> bool:
    """A protective exit: it reduces ``held`` without reversing it, and is a stop (or
    stop-limit), says so in its reason (``PROTECTIVE_REASONS``), or was placed as an exit
    (``placed_as_exits``: a RiskManager's)."""
    closes = Side.SELL if held > 0 else Side.BUY
    if held == 0 or order.side is not closes or order.remaining > abs(held) + 1e-12:
        return False
    return (
        order.id in placed_as_exits
        or order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        or order.reason.lower().startswith(PROTECTIVE_REASONS)
    )


def _adds_exposure(order: Order, held: float) -> bool:
    return abs(held + order.remaining * order.side_sign) > abs(held) + 1e-12
