"""The state_dir's storage: private files, atomic writes, and failures as typed errors.

Everything in a state_dir is the operator's alone: the dir is 0700 and every file 0600,
whatever the umask (the kill switch must not be writable by another user). A file is
written through a temporary and a rename, so it is complete or absent. An ``OSError``
(read-only, disk full, permissions) or an SQLite error while the daemon reads or writes its
state becomes a ``StateError`` that says which file, what failed and how to recover;
nothing from ``sqlite3`` reaches the operator raw.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradeloop.errors import StateDamagedError, StateError, StateLockedError, StateStorageError

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "atomic_write",
    "open_private",
    "secure_dir",
    "sqlite_error",
    "storage_error",
]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

_RESTART = "then start the daemon again (the journal keeps every committed bar)"
_DAMAGED = ("not a database", "malformed", "file is encrypted")
_BUSY = ("database is locked", "database is busy")


def secure_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing and make it 0700; refuse a dir this user
    cannot make private (owned by someone else)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
            os.chmod(path, PRIVATE_DIR)
    except OSError as err:
        raise storage_error(path, "create the state_dir", err) from err
    return path


def open_private(path: Path, doing: str) -> int:
    """A read-write descriptor of ``path``, created 0600 if missing and made 0600 if not."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)
    except OSError as err:
        raise storage_error(path, doing, err) from err
    return fd


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` through a temporary file (0600) and a rename: complete or absent."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise storage_error(path, "write", err) from err


def storage_error(path: Path, doing: str, err: OSError) -> StateStorageError:
    """An OSError on the state_dir: what could not be done to which file, and why."""
    why = os.strerror(err.errno) if err.errno else str(err)
    hint = {
        errno.ENOSPC: "free some disk space",
        errno.EFBIG: "raise the file size limit or free some disk space",
        errno.EROFS: "mount the state_dir read-write",
        errno.EACCES: "make the state_dir writable by this user",
        errno.EPERM: "give the state_dir to this user (chown)",
    }.get(err.errno or 0, "make the state_dir writable and check the disk")
    return StateStorageError(f"{path}: cannot {doing}: {why}. Fix: {hint}, {_RESTART}.")


def sqlite_error(path: Path, doing: str, err: sqlite3.Error) -> StateError:
    """An SQLite error on the journal: damaged, busy (another writer), or storage."""
    text = str(err)
    if any(word in text for word in _DAMAGED):
        return StateDamagedError(
            f"{path}: the journal is damaged ({text}) and cannot be read while trying to "
            f"{doing}. Fix: restore journal.sqlite (with its -wal file) from a backup and "
            "start with --restored, or start a new run with --fresh (the damaged state is "
            "archived, not deleted)."
        )
    if any(word in text for word in _BUSY):
        return StateLockedError(
            f"{path}: another process holds the journal ({text}). Fix: stop the other "
            "process using this state_dir."
        )
    return StateStorageError(
        f"{path}: cannot {doing}: {text}. Fix: make the state_dir writable, free some disk "
        f"space, {_RESTART}."
    )
