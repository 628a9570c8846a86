"""The operator's kill switch: ``state_dir/control.json``, written by ``tradeloop kill`` (or
SIGUSR1), read by the daemon every half second and at start, so a kill survives a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.state import atomic_write

__all__ = ["CONTROL_FILE", "Control", "write_control"]


CONTROL_FILE = "control.json"


def write_control(state_dir: Path, mode: str, reason: str) -> Path:
    """The operator's switch for a running (or next) daemon: halted, reduce_only or normal."""
    GateMode(mode)  # refuse a mode that does not exist before writing anything
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / CONTROL_FILE
    body = json.dumps({"mode": mode, "reason": reason})
    atomic_write(path, lambda p: p.write_text(body))
    return path


class Control:
    """Applies ``control.json`` to the gate whenever its content changes."""

    def __init__(self, path: Path, gate: PreTradeGate, log: Any) -> None:
        self.path, self.gate, self.log = path, gate, log
        self._applied: str | None = None

    def poll(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        if text == self._applied:
            return
        self._applied = text
        try:
            wanted = json.loads(text)
            mode, reason = GateMode(wanted["mode"]), str(wanted.get("reason", ""))
        except (ValueError, KeyError, TypeError) as err:
            self.log.error("control_file_invalid", path=str(self.path), error=str(err))
            return
        if mode is self.gate.mode and self.gate.manual == (mode is not GateMode.NORMAL):
            return  # already in force (restored from the journal)
        self.gate.set_mode(mode, reason or "operator")
        self.log.warning("gate_mode_changed", mode=self.gate.mode.value, reason=self.gate.reason)

    def kill(self) -> None:
        write_control(self.path.parent, GateMode.HALTED.value, "SIGUSR1")
        self.poll()

    async def watch(self, handle: Any, every_s: float = 0.5) -> None:
        """The control watcher task (supervised): poll every ``every_s``; an unreadable
        control file raises, and the supervisor logs and restarts the watcher."""
        while True:
            await asyncio.sleep(every_s)
            self.poll()
            handle.restored()
