"""The journal's high-water mark, kept outside SQLite: ``state_dir/journal.seq``. I/O edge.

Every journal commit carries a sequence number (1, 2, 3, ...). After a commit is durable
the daemon writes its number here, so this file is never ahead of an intact journal: at
most one commit behind it after a crash. A journal *behind* the mark lost commits it had
made (its ``-wal`` deleted or damaged after a crash, an old copy put back), and restoring
it would trade on a book that forgot fills: the daemon refuses (``StateRollbackError``).

One fixed-width record rewritten in place (``pwrite``, no fsync): a process that dies
leaves the page cache to the kernel, so the last number written survives a SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tradeloop.service.storage import open_private, storage_error

__all__ = ["WATERMARK_FILE", "Watermark", "read_watermark"]

WATERMARK_FILE = "journal.seq"
_WIDTH = 20


class Watermark:
    """The open mark file; ``advance`` records the latest durable commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_private(path, "open the journal's mark")

    def advance(self, seq: int) -> None:
        try:
            os.pwrite(self._fd, f"{seq:0{_WIDTH}d}\n".encode(), 0)
        except OSError as err:
            raise storage_error(self.path, "write the journal's mark", err) from err

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def read_watermark(path: Path) -> int | None:
    """The last commit number recorded at ``path``; None when absent or unreadable."""
    try:
        text = path.read_bytes()[: _WIDTH + 1].decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
