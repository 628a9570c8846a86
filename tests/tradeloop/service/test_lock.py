"""The state_dir's lock and watermark, on real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradeloop.errors import StateLockedError
from tradeloop.service.lock import StateLock, holder_pid
from tradeloop.service.watermark import Watermark, read_watermark


def test_lock_refuses_a_second_holder_naming_the_first_pid(tmp_path: Path) -> None:
    first = StateLock(tmp_path / "state").acquire()
    assert holder_pid(tmp_path / "state") == os.getpid()
    with pytest.raises(StateLockedError, match=f"in use by the daemon with pid {os.getpid()}"):
        StateLock(tmp_path / "state").acquire()  # a new open file: flock refuses it too
    first.release()
    assert holder_pid(tmp_path / "state") is None
    StateLock(tmp_path / "state").acquire().release()


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from tradeloop.service.lock import StateLock;"
        f"StateLock(Path({str(tmp_path)!r})).acquire(); os._exit(0)"  # no release, no cleanup
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (tmp_path / "daemon.lock").read_text().strip().isdigit()  # the pid stays...
    assert holder_pid(tmp_path) is None  # ...but nobody holds it
    StateLock(tmp_path).acquire().release()


def test_lock_makes_the_state_dir_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    os.chmod(state, 0o777)
    StateLock(state).acquire().release()
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "daemon.lock").stat().st_mode & 0o777 == 0o600


def test_watermark_records_the_last_commit_in_place(tmp_path: Path) -> None:
    path = tmp_path / "journal.seq"
    assert read_watermark(path) is None
    mark = Watermark(path)
    for seq in (1, 2, 345):
        mark.advance(seq)
    assert read_watermark(path) == 345
    mark.advance(9)  # fixed width: a smaller number overwrites the whole record
    assert read_watermark(path) == 9
    mark.close()
    path.write_bytes(b"\xff garbage")
    assert read_watermark(path) is None
