"""One daemon per state_dir: an exclusive lock on ``state_dir/daemon.lock``. I/O edge.

The lock is an ``flock`` held for the daemon's life, so the kernel releases it when the
process dies, however it dies (a SIGKILL leaves no stale lock to clean up). The file holds
the holder's pid, so a second daemon, or ``tradeloop kill``, can name it. Being able to take
the lock proves that no daemon runs on the state_dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from tradeloop.errors import StateLockedError
from tradeloop.service.storage import open_private, secure_dir, storage_error

__all__ = ["LOCK_FILE", "StateLock", "holder_pid"]

LOCK_FILE = "daemon.lock"


class StateLock:
    """The state_dir's lock, taken by ``acquire`` and held until ``release`` (or exit)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        """Take the lock or raise ``StateLockedError`` naming the pid that holds it."""
        secure_dir(self.path.parent)
        fd = open_private(self.path, "open the lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder_pid(self.path.parent)
            who = f"the daemon with pid {pid}" if pid else "another process"
            raise StateLockedError(
                f"{self.path.parent}: state_dir is in use by {who} (lock {self.path}). Fix: "
                f"stop it first (kill -TERM {pid or '<pid>'}), or give this daemon its own "
                "[run] state_dir."
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as err:
            os.close(fd)
            raise storage_error(self.path, "write the lock file", err) from err
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def holder_pid(state_dir: Path) -> int | None:
    """The pid of the daemon holding ``state_dir``'s lock, or None when none holds it."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            with contextlib.suppress(ValueError):
                return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
            return None
        return None  # we could take it: nobody holds it
    finally:
        os.close(fd)
