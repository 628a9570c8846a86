"""The operator's kill switch: ``state_dir/control.json``, written by ``tradeloop kill`` (or
SIGUSR1), read by the daemon every half second, at start and before each timestamp is
journaled (so a kill that arrives while the strategy decides stops its orders before any is
sent), and kept across restarts.

The daemon answers each request in ``state_dir/control.ack.json`` (the request's id, the
mode in force, the daemon's pid and when): ``tradeloop kill`` reports a kill as applied only
when the daemon itself says so. The watcher survives any content: an unreadable, non-UTF-8,
malformed file (or a directory in its place) is logged, once per distinct content, and the
last valid mode stays in force.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from tradeloop.errors import StateError
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.storage import atomic_write, secure_dir

__all__ = ["ACK_FILE", "CONTROL_FILE", "Control", "read_ack", "write_control"]


CONTROL_FILE = "control.json"
ACK_FILE = "control.ack.json"
_SHOWN = 200  # bytes of a bad control file quoted in the log


def write_control(state_dir: Path, mode: str, reason: str, request: str | None = None) -> Path:
    """The operator's switch for a running (or next) daemon: halted, reduce_only or normal.
    ``request`` identifies this write in the daemon's acknowledgement."""
    GateMode(mode)  # refuse a mode that does not exist before writing anything
    secure_dir(state_dir)
    path = state_dir / CONTROL_FILE
    body = json.dumps({"mode": mode, "reason": reason, "request": request or uuid.uuid4().hex[:16]})
    atomic_write(path, lambda p: p.write_text(body))
    _give_to_owner(path)
    return path


def read_ack(state_dir: Path) -> dict[str, Any] | None:
    """The daemon's last acknowledgement, or None (none yet, or unreadable)."""
    try:
        ack = json.loads((state_dir / ACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return ack if isinstance(ack, dict) else None


class Control:
    """Applies ``control.json`` to the gate whenever its content changes, and says so."""

    def __init__(self, path: Path, gate: PreTradeGate, log: Any) -> None:
        self.path, self.gate, self.log = path, gate, log
        self._applied: bytes | str | None = None

    def poll(self) -> None:
        """Read the file; apply a new valid request; log anything else (never raise)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            self._refuse(f"{type(err).__name__}: {os.strerror(err.errno or 0)}", b"")
            return
        if raw == self._applied:
            return
        try:
            wanted = json.loads(raw.decode("utf-8"))
            mode, reason = GateMode(wanted["mode"]), str(wanted.get("reason", ""))
            request = str(wanted.get("request", ""))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            self._refuse(f"{type(err).__name__}: {err}", raw)
            return
        self._applied = raw
        in_force = mode is self.gate.mode and self.gate.manual == (mode is not GateMode.NORMAL)
        if not in_force:
            self.gate.set_mode(mode, reason or "operator")
            self.log.warning(
                "gate_mode_changed", mode=self.gate.mode.value, reason=self.gate.reason
            )
        elif reason and reason != self.gate.reason:  # in force already: the newer reason
            self.gate.reason = reason
        self._acknowledge(request)

    def kill(self) -> None:
        """SIGUSR1: halt, as ``tradeloop kill`` would."""
        try:
            write_control(self.path.parent, GateMode.HALTED.value, "SIGUSR1")
        except StateError as err:  # the halt still applies in memory; the file could not
            self.log.error("control_file_unwritable", error=str(err))
            self.gate.set_mode(GateMode.HALTED, "SIGUSR1")
            return
        self.poll()

    async def watch(self, handle: Any, every_s: float = 0.5) -> None:
        """The control watcher task (supervised): poll every ``every_s``; an unreadable
        control file raises, and the supervisor logs and restarts the watcher."""
        while True:
            await asyncio.sleep(every_s)
            self.poll()
            handle.restored()

    def _refuse(self, problem: str, raw: bytes) -> None:
        seen = problem + repr(raw[:_SHOWN])
        if seen == self._applied:
            return  # logged once per distinct content
        self._applied = seen
        self.log.error(
            "control_file_invalid",
            path=str(self.path),
            error=problem,
            content=raw[:_SHOWN].decode("utf-8", "backslashreplace"),
            mode_in_force=self.gate.mode.value,
        )

    def _acknowledge(self, request: str) -> None:
        ack = {
            "request": request,
            "mode": self.gate.mode.value,
            "reason": self.gate.reason,
            "pid": os.getpid(),
            "applied_at": time.time(),
        }
        try:
            atomic_write(self.path.with_name(ACK_FILE), lambda p: p.write_text(json.dumps(ack)))
        except StateError as err:  # the mode is in force; only the answer is missing
            self.log.error("control_ack_unwritable", error=str(err))


def _give_to_owner(path: Path) -> None:
    """Root writing into a daemon user's state_dir: the file goes to the dir's owner, so the
    daemon can read it (it is 0600)."""
    if os.geteuid() != 0:
        return
    owner = path.parent.stat()
    if owner.st_uid != 0:
        os.chown(path, owner.st_uid, owner.st_gid)
