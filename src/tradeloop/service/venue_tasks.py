"""The live daemon's three tasks that book money, as bodies for the supervisor
(``tradeloop.service.tasks``): the sender, the execution stream and the reconcile loop.

- ``sender``: woken after every journaled timestamp (``wake``) and every ``tick_s``: sends
  the outbox and the cancels, looks up orders of unknown outcome (with backoff, until
  ``unknown_deadline_s``), journals what changed. Restarted, it carries on: an order whose
  request was in flight when it failed is ``UNKNOWN`` and looked up, never resent.
- ``execution_stream``: books every fill (and order update) the venue streams, journaling
  after each. Restarted after a failure or an end, it subscribes afresh (calls
  ``executions()`` again) and catches up over REST (``recent_executions`` from a little
  before the last booked fill); a fill in the instant between the two is booked by the next
  reconciliation. It counts as restored once the new stream delivers, or stays up
  ``settle_s``.
- ``reconcile_loop``: every ``reconcile_every_s`` compares the book with the venue
  (``tradeloop.service.reconcile``) and re-reads the instrument rules when they are due.
  Restarted, it reconciles at once. A failed rule refresh keeps the old rules (logged).

At shutdown, once the three have stopped, ``finish`` makes a last send pass (what the last
timestamp decided still goes out) and then books over REST every fill the stream had no time
to deliver: the fills of what that pass sent (a market order fills at once) and any still on
their way when the stream was cancelled. Without it the book could end a run one fill behind
the venue (seen: the last bar's buy filled at the venue, the book stayed flat).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tradeloop.broker.live import LiveBroker
from tradeloop.errors import AdapterError
from tradeloop.events import OrderStatus
from tradeloop.service.tasks import TaskHandle
from tradeloop.venue import Execution

__all__ = ["VenueTasks"]

_CATCH_UP_MARGIN_NS = 5 * 10**9  # re-fetch fills from a little before the last booked one


class VenueTasks:
    """The sender, execution-stream and reconcile-loop bodies of one live daemon."""

    def __init__(
        self,
        broker: LiveBroker,
        commit: Callable[[], None],
        check: Callable[..., Awaitable[list[str]]],
        *,
        reconcile_every_s: float,
        instruments_refresh_s: float,
        assets: Sequence[str] = (),
        log: Any,
        tick_s: float = 0.5,
        settle_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.commit = commit  # journal the book (at the last handled timestamp)
        self.check = check  # reconcile(since_ns=...)
        self.reconcile_every_s = reconcile_every_s
        self.instruments_refresh_s = instruments_refresh_s
        self.assets = tuple(assets)
        self.tick_s = tick_s
        self.settle_s = settle_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._rules_at = clock()
        self._log = log

    # -- sender --------------------------------------------------------------------------------

    async def wake(self, ts_ns: int) -> None:
        """The runtime's ``after_timestamp``: the timestamp is journaled, send what it decided."""
        self._wake.set()

    async def sender(self, handle: TaskHandle) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()
            await self.send_once()
            handle.restored()

    async def send_once(self) -> None:
        """One pass: send, look up what is unknown, journal if anything could have changed."""
        broker = self.broker
        busy = bool(broker.outbox or broker.cancels) or any(
            o.status is OrderStatus.UNKNOWN for o in broker.open_orders()
        )
        if not busy:
            return
        try:
            if broker.outbox or broker.cancels:
                await broker.send()
            await broker.resolve()  # no request unless an outcome is unknown and due
        finally:
            self.commit()

    # -- execution stream ----------------------------------------------------------------------

    async def execution_stream(self, handle: TaskHandle) -> None:
        stream = self.broker.client.executions().__aiter__()
        pending: asyncio.Future[Any] = asyncio.ensure_future(anext(stream))
        try:
            if handle.restarts:
                await asyncio.sleep(0)  # let the new stream send its subscription first
                caught = await self.catch_up()
                self._log.info("executions_caught_up", fills=caught, restarts=handle.restarts)
            await asyncio.wait({pending}, timeout=self.settle_s)
            if not (pending.done() and pending.exception() is not None):
                handle.restored()  # the stream delivers, or has stayed up: it is back
            while True:
                self._take(await pending)
                pending = asyncio.ensure_future(anext(stream))
        except StopAsyncIteration:
            return  # the supervisor logs the end and restarts it
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    async def finish(self) -> int:
        """At shutdown (the tasks stopped): send, then catch up; return the fills booked."""
        await self.send_once()
        caught = await self.catch_up()
        self._log.info("executions_caught_up", fills=caught, at="shutdown")
        return caught

    async def catch_up(self) -> int:
        """Book the fills the stream may have missed; return how many were new."""
        broker = self.broker
        since = broker.fills[-1].ts_ns - _CATCH_UP_MARGIN_NS if broker.fills else 0
        booked = 0
        for execution in await broker.client.recent_executions(max(since, 0)):
            booked += broker.apply(execution) is not None
        if booked:
            self.commit()
        return booked

    def _take(self, item: Any) -> None:
        if isinstance(item, Execution):
            if self.broker.apply(item) is not None:
                self.commit()
        else:
            self.broker.observe(item)
            self.commit()

    # -- reconcile loop ------------------------------------------------------------------------

    async def reconcile_loop(self, handle: TaskHandle) -> None:
        if handle.restarts:
            await self.reconcile_once()
            handle.restored()
        while True:
            await asyncio.sleep(self.reconcile_every_s)
            await self.reconcile_once()
            handle.restored()

    async def reconcile_once(self) -> None:
        broker = self.broker
        if self._clock() - self._rules_at >= self.instruments_refresh_s:
            self._rules_at = self._clock()
            try:
                known = await broker.load_instruments(self.assets)
                self._log.info("instruments_refreshed", assets=known)
            except AdapterError as err:
                self._log.warning("instruments_refresh_failed", error=str(err))
        try:
            await self.check(since_ns=broker.fills[-1].ts_ns if broker.fills else 0)
        finally:
            self.commit()  # what reconciliation adopted is journaled now, not at the next bar
