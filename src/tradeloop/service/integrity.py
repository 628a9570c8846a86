"""What the daemon checks before it trusts its state_dir, in this order. I/O edge.

1. The lock: one daemon per state_dir (``service.lock``); a second one is refused, naming
   the first one's pid.
2. ``--fresh``: the state of the earlier run (journal, outputs, marks) is moved to
   ``state_dir/archive/<UTC time>/``, never deleted, and a new run begins. The operator's
   ``control.json`` stays: a kill is the operator's, not the run's.
3. The journal is there: a journal that is missing, empty or never committed while files
   of an earlier run remain (its outputs, its watermark, its -wal, the daemon's control
   acknowledgement) is refused: starting flat would forget the run's positions.
4. The journal is readable: every page is read once (a damaged file is refused).
5. Nothing was lost: the journal's last commit number is at least the watermark's and the
   summary's (``service.watermark``); a journal behind them lost commits (its -wal deleted
   or damaged) and is refused, unless the operator says ``--restored`` (a backup put back
   on purpose: the run resumes from the backup's last bar).
6. The journal belongs to this run: its header (``service.header``) matches the config.

Checks 3 to 5 read the journal read-only, so a refusal leaves every file as it was found
(evidence for the operator). No order is decided or sent before all six pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradeloop.errors import (
    StateMismatchError,
    StateMissingError,
    StateRollbackError,
    StateStorageError,
)
from tradeloop.service.control import ACK_FILE, CONTROL_FILE
from tradeloop.service.header import RunHeader, differences
from tradeloop.service.journal import JOURNAL_FILE, Journal, JournalState
from tradeloop.service.lock import LOCK_FILE, StateLock
from tradeloop.service.storage import secure_dir, storage_error
from tradeloop.service.watermark import WATERMARK_FILE, Watermark, read_watermark

__all__ = ["ARCHIVE_DIR", "OpenState", "archive", "earlier_run", "open_state"]

ARCHIVE_DIR = "archive"
# what a daemon leaves behind once it has committed something
_EVIDENCE = (
    f"{JOURNAL_FILE}-wal",
    WATERMARK_FILE,
    "summary.json",
    "fills.parquet",
    "orders.parquet",
    "result",
    ACK_FILE,  # the daemon's answer to the operator's control.json
)
_KEPT = (LOCK_FILE, ARCHIVE_DIR, CONTROL_FILE)  # --fresh leaves these in place
_START_OVER = "start a new run with --fresh (the old state is moved to {dir}/archive/, not deleted)"


@dataclass
class OpenState:
    """A journal that passed every check, and the lock held while the daemon runs."""

    journal: Journal
    saved: JournalState
    lock: StateLock

    def close(self) -> None:
        self.journal.close()
        self.lock.release()


def open_state(
    state_dir: Path,
    header: RunHeader,
    log: Any,
    *,
    fresh: bool = False,
    restored: bool = False,
) -> OpenState:
    """Lock ``state_dir``, check its journal against ``header`` and open it for writing."""
    lock = StateLock(state_dir).acquire()
    try:
        if fresh:
            archived = archive(state_dir)
            if archived is not None:
                log.warning("state_archived", to=str(archived))
        path = state_dir / JOURNAL_FILE
        _check(state_dir, path, header, restored, log)
        journal = Journal(path, header.spec, watermark=Watermark(state_dir / WATERMARK_FILE))
        if journal.header() is None:
            journal.write_header(header.to_json())
        assert journal.watermark is not None
        journal.watermark.advance(journal.seq)  # a --restored journal sets the mark back
        return OpenState(journal, journal.load(), lock)
    except BaseException:
        lock.release()
        raise


def earlier_run(state_dir: Path) -> list[str]:
    """The files in ``state_dir`` that show a daemon committed state here before."""
    return [name for name in _EVIDENCE if (state_dir / name).exists()]


def archive(state_dir: Path) -> Path | None:
    """Move everything an earlier run left (but the lock, the archive and the operator's
    control file) to ``archive/<UTC time>/``; None when there was nothing to move."""
    names = sorted(p.name for p in state_dir.iterdir() if p.name not in _KEPT)
    if not names:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = secure_dir(state_dir / ARCHIVE_DIR / stamp)
    try:
        for name in names:
            shutil.move(state_dir / name, target / name)
    except OSError as err:
        raise storage_error(target, "archive the earlier run", err) from err
    return target


def _check(state_dir: Path, path: Path, header: RunHeader, restored: bool, log: Any) -> None:
    evidence = earlier_run(state_dir)
    size = path.stat().st_size if path.exists() else None
    if not size:
        if evidence:
            state = "missing" if size is None else "empty (0 bytes)"
            raise StateMissingError(
                f"{path}: the journal is {state}, but an earlier run left "
                f"{', '.join(evidence)} in {state_dir}: starting flat would forget its "
                "positions and fills. Fix: put the journal back (from a backup: start with "
                f"--restored), or {_START_OVER.format(dir=state_dir)}."
            )
        return  # a new run
    with _reading(path) as reader:
        reader.check()
        committed = reader.has_state()
        seq, stored = reader.seq, reader.header()
    if not committed:
        _check_sequence(state_dir, path, 0, False, log)  # a -wal lost before any checkpoint
        if evidence:
            raise StateMissingError(
                f"{path}: the journal holds no committed bar, but an earlier run left "
                f"{', '.join(evidence)} in {state_dir}. Fix: restore the run's journal "
                f"(with --restored), or {_START_OVER.format(dir=state_dir)}."
            )
        return
    _check_sequence(state_dir, path, seq, restored, log)
    if stored is not None:
        found = differences(stored, header)
        if found:
            raise StateMismatchError(
                f"{path}: the journal belongs to another run: {'; '.join(found)}. Fix: start "
                "with the config (and setup) that run began with, or "
                f"{_START_OVER.format(dir=state_dir)}, or give this run its own state_dir."
            )
        if stored.get("code") not in (None, header.code):
            log.warning("strategy_code_changed", strategy=header.spec, journal=str(path))
    else:
        log.warning("journal_header_written", journal=str(path), reason="journal predates it")


def _check_sequence(state_dir: Path, path: Path, seq: int, restored: bool, log: Any) -> None:
    marks = {
        WATERMARK_FILE: read_watermark(state_dir / WATERMARK_FILE),
        "summary.json": _summary_seq(state_dir / "summary.json"),
    }
    ahead = {name: mark for name, mark in marks.items() if mark is not None and mark > seq}
    if not ahead:
        return
    if restored:
        log.warning("journal_restored", journal=str(path), seq=seq, run_had=max(ahead.values()))
        return
    seen = ", ".join(f"{name} says {mark}" for name, mark in ahead.items())
    raise StateRollbackError(
        f"{path}: the journal ends at commit {seq}, but the run had committed more ({seen}): "
        "its last commits are lost (the -wal file deleted or damaged after a crash?), and "
        "resuming would forget their fills. Fix: put the journal back together with its "
        "journal.sqlite-wal from a backup, or, to resume from this older journal on "
        f"purpose, start with --restored; or {_START_OVER.format(dir=state_dir)}."
    )


def _summary_seq(path: Path) -> int | None:
    try:
        seq = json.loads(path.read_text()).get("journal_seq")
    except (OSError, ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[Journal]:
    """The journal opened read-only; the empty -wal and -shm a WAL reader creates are
    removed again, so a refusal leaves the state_dir exactly as it was found."""
    if not os.access(path, os.R_OK):
        raise StateStorageError(
            f"{path}: the journal is not readable by this user. Fix: run the daemon as the "
            "user that owns its state_dir."
        )
    companions = [path.with_name(f"{path.name}-{suffix}") for suffix in ("wal", "shm")]
    absent = [p for p in companions if not p.exists()]
    reader = None
    try:
        reader = Journal.reader(path)
        yield reader
    finally:
        if reader is not None:
            reader.close()
        wal = companions[0]
        if wal in absent and wal.exists() and wal.stat().st_size == 0:
            for created in absent:
                created.unlink(missing_ok=True)
