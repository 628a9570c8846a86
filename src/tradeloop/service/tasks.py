"""The daemon's supervisor: one owner for every long-lived task (bar feed, execution stream,
reconcile loop, sender, control watcher, health server). No task ends silently.

Each task is a body ``async def body(handle)`` that runs until it is cancelled. When it
raises, or returns (a long-lived task has no business returning), the supervisor

1. logs ``task_failed`` (or ``task_ended``) with the task's name, the error and its type;
2. waits ``min(max_backoff_s, base_backoff_s × 2^(n-1))`` with ±50 % jitter for the n-th
   failure in a row (at least the ``retry_after_s`` of a ``RateLimitError``), counts the
   restart (``restarts[name]``: ``tradeloop_task_restarts_total`` in ``/metrics``) and runs
   the body again. The body knows it is a restart (``handle.restarts``): the execution
   stream then subscribes afresh and catches up over REST;
3. when the body says it is working again (``handle.restored()``: subscribed, a pass
   done), logs ``task_restored`` with the downtime and resets the backoff.

A task still down ``restore_deadline_s`` after its first failure, or one failing with a
``ConfigError`` (bad keys, a permission: waiting will not fix it), is *lost*: logged
``task_lost``, listed by ``lost()`` (``/readyz`` answers 503 naming it and why), and, if it
books money (``books_money``), the gate goes to ``on_task_lost`` (``halted`` or
``reduce_only``) and stays there until the operator clears it. A lost task keeps being
restarted (at the longest backoff), and is no longer lost once it is restored.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from tradeloop.config import SupervisionSettings
from tradeloop.errors import ConfigError, RateLimitError
from tradeloop.risk.gate import GateMode, PreTradeGate

__all__ = ["Supervisor", "TaskHandle"]


@dataclass(slots=True)
class TaskHandle:
    """What a task body is told (``restarts``) and tells back (``restored()``)."""

    name: str
    restarts: int = 0
    _on_restored: Callable[[str], None] = field(default=lambda name: None, repr=False)

    def restored(self) -> None:
        """The task works again (subscribed, caught up, a pass done): not down any more."""
        self._on_restored(self.name)


Body = Callable[[TaskHandle], Awaitable[None]]


@dataclass(slots=True)
class _Task:
    name: str
    body: Body
    books_money: bool
    handle: TaskHandle
    runner: asyncio.Task[None] | None = None
    failures: int = 0  # in a row, since it last worked
    down_since: float | None = None
    why: str = ""
    lost: bool = False


class Supervisor:
    """Runs, restarts and reports the daemon's tasks (see the module docstring)."""

    def __init__(
        self,
        settings: SupervisionSettings | None = None,
        gate: PreTradeGate | None = None,
        *,
        log: Any = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or SupervisionSettings()
        self.gate = gate
        self.restarts: Counter[str] = Counter()
        self._tasks: dict[str, _Task] = {}
        self._random = random.Random(seed)
        self._clock = clock
        self._closing = False
        self._log = (log or structlog.get_logger()).bind(component="supervisor")

    @property
    def names(self) -> list[str]:
        return list(self._tasks)

    def spawn(self, name: str, body: Body, *, books_money: bool = False) -> None:
        """Start ``body`` under supervision as task ``name``."""
        if name in self._tasks:
            raise ConfigError(f"a task named {name!r} is already supervised")
        handle = TaskHandle(name, _on_restored=self._restored)
        task = _Task(name, body, books_money, handle)
        self._tasks[name] = task
        self.restarts[name] += 0  # listed in /metrics from the start
        task.runner = asyncio.create_task(self._run(task), name=f"tradeloop:{name}")

    def lost(self) -> dict[str, str]:
        """The tasks that are lost, and why (for ``/readyz``)."""
        return {t.name: t.why for t in self._tasks.values() if t.lost}

    def down(self) -> dict[str, str]:
        """The tasks failing right now (lost or not yet), and why."""
        return {t.name: t.why for t in self._tasks.values() if t.down_since is not None}

    async def close(self, timeout_s: float = 3.0) -> None:
        """Cancel every task and wait for them (at most ``timeout_s``: a peer that does not
        answer a closing handshake must not hold the daemon's shutdown)."""
        self._closing = True
        runners = [t.runner for t in self._tasks.values() if t.runner is not None]
        for runner in runners:
            runner.cancel()
        if not runners:
            return
        _, slow = await asyncio.wait(runners, timeout=timeout_s)
        if slow:
            names = sorted(r.get_name().removeprefix("tradeloop:") for r in slow)
            self._log.warning("tasks_still_stopping", tasks=names, waited_s=timeout_s)

    # -- internals -----------------------------------------------------------------------------

    async def _run(self, task: _Task) -> None:
        while True:
            error: BaseException | None = None
            try:
                await task.body(task.handle)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # every failure is logged and restarted, never lost
                error = err
            if self._closing:
                return
            delay = self._failed(task, error)
            await asyncio.sleep(delay)
            self.restarts[task.name] += 1
            task.handle.restarts += 1
            self._log.info("task_restarting", task=task.name, restarts=task.handle.restarts)

    def _failed(self, task: _Task, error: BaseException | None) -> float:
        """Note the failure, log it, mark the task lost if it must be; the delay to wait."""
        settings = self.settings
        task.failures += 1
        now = self._clock()
        if task.down_since is None:
            task.down_since = now
        if error is None:
            task.why = "the task returned (a long-lived task must not end)"
        else:
            task.why = f"{type(error).__name__}: {error}"
        if task.lost and not isinstance(error, ConfigError):  # still lost: how long, and why
            task.why = f"down for {now - task.down_since:.1f} s ({task.why})"
        delay = min(settings.max_backoff_s, settings.base_backoff_s * 2 ** (task.failures - 1))
        delay *= 0.5 + self._random.random()
        if isinstance(error, RateLimitError):
            delay = max(delay, error.retry_after_s)
        self._log.error(
            "task_ended" if error is None else "task_failed",
            task=task.name,
            error=task.why,
            error_type=type(error).__name__ if error is not None else None,
            failures=task.failures,
            restart_in_s=round(delay, 3),
        )
        fatal = isinstance(error, ConfigError)
        if fatal or now - task.down_since >= settings.restore_deadline_s:
            self._lose(task, fatal)
        else:
            loop = asyncio.get_running_loop()
            wait_s = settings.restore_deadline_s - (now - task.down_since)
            loop.call_later(wait_s, self._check_deadline, task, task.down_since)
        return settings.max_backoff_s if task.lost else delay

    def _check_deadline(self, task: _Task, down_since: float) -> None:
        if task.down_since == down_since and not task.lost and not self._closing:
            self._lose(task, fatal=False)

    def _lose(self, task: _Task, fatal: bool) -> None:
        if task.lost:
            return
        task.lost = True
        assert task.down_since is not None
        down_s = self._clock() - task.down_since
        if not fatal:
            task.why = f"down for {down_s:.1f} s ({task.why})"
        self._log.error("task_lost", task=task.name, error=task.why, books_money=task.books_money)
        if task.books_money and self.gate is not None:
            mode = GateMode.HALTED if self.settings.on_task_lost == "halt" else GateMode.REDUCE_ONLY
            self.gate.set_mode(mode, f"task {task.name} lost: {task.why}")
            self._log.error("gate_mode_changed", mode=mode.value, reason=self.gate.reason)

    def _restored(self, name: str) -> None:
        task = self._tasks[name]
        if task.down_since is None:
            return
        self._log.warning(
            "task_restored",
            task=name,
            down_s=round(self._clock() - task.down_since, 3),
            was_lost=task.lost,
        )
        task.down_since = None
        task.failures = 0
        task.lost = False
        task.why = ""
