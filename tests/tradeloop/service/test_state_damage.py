"""The state-damage suite: the paper daemon as a real subprocess on real SQLite files.

Two runs of the bundled strategy are prepared once: one SIGKILLed mid-run (its last commits
still in the journal's -wal) and one stopped with SIGTERM mid-run (its outputs written, the
journal checkpointed). Each case copies one, damages it the way the issue reproduced, and
starts the daemon on it. A refusal must: exit with 78 (no restart policy loops on it), name
the typed error and the fix, log one JSON line, leave every file as it was found, and never
reach the market: its feed is a TCP port that would show any connection attempt, so no bar
was decided and no order sent on a guessed state. A recovery must end exactly like the
backtest (fills and final equity), the proof that nothing was forgotten or applied twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.tradeloop.service.daemons import (
    ROOT,
    assert_ends_like_the_backtest,
    daemon,
    json_lines,
    serving_replay,
    write_config,
)
from tradeloop.cli.service import EXIT_REFUSED

# the replay's speed: the whole sample in about 4 s, so a run can be stopped mid-way
SPEED = 1.2e7


@dataclass
class Runs:
    """The prepared state dirs and the replay they came from."""

    url: str
    crashed: Path  # SIGKILLed mid-run
    stopped: Path  # SIGTERMed mid-run
    backup: Path  # `stopped`'s journal, copied aside; the run then went further
    went_on: Path  # `stopped` run further and stopped again (summary ahead of `backup`)


class ClosedDoor:
    """A listening port nobody accepts on: a client that connects sits in its backlog."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.url = f"ws://127.0.0.1:{self.sock.getsockname()[1]}"

    def knocks(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


def _seq(journal: Path) -> int:
    """The journal's last commit number (0: none, not even the schema, reached the file)."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            return 0
        row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    return int(row[0])


def _stop_mid_run(config: Path, how: signal.Signals, after_s: float, *extra: str) -> None:
    proc = daemon(config, *extra)
    json_lines(proc.stdout, "daemon_started")  # type: ignore[arg-type]
    time.sleep(after_s)
    proc.send_signal(how)
    proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("runs")
    with serving_replay(SPEED) as url:
        made = {}
        for name, how in (("crashed", signal.SIGKILL), ("stopped", signal.SIGTERM)):
            work = root / name
            work.mkdir()
            for after_s in (1.2, 1.6, 2.0):
                shutil.rmtree(work / "state", ignore_errors=True)
                _stop_mid_run(write_config(work, url), how, after_s)
                summary = work / "state" / "summary.json"
                if how is signal.SIGKILL:
                    # the case needs commits that only the -wal holds
                    bare = root / "bare.sqlite"
                    shutil.copy(work / "state" / "journal.sqlite", bare)
                    if _seq(bare) < _seq(work / "state" / "journal.sqlite"):
                        break
                elif json.loads(summary.read_text())["stopped_early"]:
                    break
            else:
                pytest.fail(f"could not stop the {name} run mid-way")
            made[name] = work / "state"
        backup = root / "backup.sqlite"
        shutil.copy(made["stopped"] / "journal.sqlite", backup)
        went_on = root / "went_on"
        shutil.copytree(made["stopped"].parent, went_on)
        config = write_config(went_on, url)
        _stop_mid_run(config, signal.SIGTERM, 2.2)  # the replay first resends what it had
        assert _seq(went_on / "state" / "journal.sqlite") > _seq(backup)
        yield Runs(url, made["crashed"], made["stopped"], backup, went_on / "state")


def _fingerprint(state: Path) -> dict[str, str]:
    """Every file's digest (the lock and SQLite's shared-memory index aside)."""
    return {
        str(p.relative_to(state)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(state.rglob("*"))
        if p.is_file() and p.name not in ("daemon.lock", "journal.sqlite-shm")
    }


# -- the damage, one function per case ------------------------------------------------------


def delete_journal(state: Path, runs: Runs) -> None:
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (state / name).unlink(missing_ok=True)


def truncate_journal_to_zero(state: Path, runs: Runs) -> None:
    os.truncate(state / "journal.sqlite", 0)


def truncate_journal_to_half(state: Path, runs: Runs) -> None:
    path = state / "journal.sqlite"
    os.truncate(path, path.stat().st_size // 2)


def overwrite_journal_header(state: Path, runs: Runs) -> None:
    with open(state / "journal.sqlite", "r+b") as file:
        file.write(b"not an sqlite file at all" * 4)


def delete_wal(state: Path, runs: Runs) -> None:
    (state / "journal.sqlite-wal").unlink()
    (state / "journal.sqlite-shm").unlink(missing_ok=True)


def garble_wal(state: Path, runs: Runs) -> None:
    """Random bytes over the second half of the -wal (its frames' checksums then fail)."""
    path = state / "journal.sqlite-wal"
    size = path.stat().st_size
    noise = random.Random(7).randbytes(size - size // 2)
    with open(path, "r+b") as file:
        file.seek(size // 2)
        file.write(noise)
    (state / "journal.sqlite-shm").unlink(missing_ok=True)


def put_back_an_older_journal(state: Path, runs: Runs) -> None:
    """The run went on after a backup; the backup is copied back over its journal."""
    shutil.copy(runs.backup, state / "journal.sqlite")
    for name in ("journal.sqlite-wal", "journal.sqlite-shm", "journal.seq"):
        (state / name).unlink(missing_ok=True)


def nothing(state: Path, runs: Runs) -> None:
    """No damage: the config changes instead."""


def read_only(state: Path) -> Sequence[str]:
    """Make ``state`` read-only for the daemon: its own mount namespace with a read-only
    bind mount when we are root (root ignores file modes), plain modes otherwise."""
    if os.geteuid() != 0:
        for path in [state, *state.rglob("*")]:
            path.chmod(0o500 if path.is_dir() else 0o400)
        return ()
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, "sh", str(state))


@dataclass(frozen=True)
class Case:
    name: str
    start_from: str  # which prepared run: crashed, stopped, went_on
    damage: Callable[[Path, Runs], None]
    error: str
    says: tuple[str, ...]
    config: dict[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


CASES = [
    Case(
        "journal deleted after a crash",
        "crashed",
        delete_journal,
        "StateMissingError",
        ("the journal is missing", "journal.seq", "--fresh"),
    ),
    Case(
        "journal deleted, the outputs of a stopped run remain",
        "stopped",
        delete_journal,
        "StateMissingError",
        ("the journal is missing", "summary.json, fills.parquet, orders.parquet, result"),
    ),
    Case(
        "journal truncated to 0 bytes",
        "crashed",
        truncate_journal_to_zero,
        "StateMissingError",
        ("the journal is empty (0 bytes)", "journal.sqlite-wal"),
    ),
    Case(
        "journal truncated to half",
        "stopped",
        truncate_journal_to_half,
        "StateDamagedError",
        ("the journal is damaged", "restore journal.sqlite", "--fresh"),
    ),
    Case(
        "journal's first page overwritten",
        "stopped",
        overwrite_journal_header,
        "StateDamagedError",
        ("the journal is damaged (file is not a database)",),
    ),
    Case(
        "-wal deleted after a crash",
        "crashed",
        delete_wal,
        "StateRollbackError",
        ("journal.seq says", "its last commits are lost", "--restored"),
    ),
    Case(
        "garbage in the second half of the -wal",
        "crashed",
        garble_wal,
        "StateRollbackError",
        ("journal.seq says", "its last commits are lost"),
    ),
    Case(
        "an older journal put back, the watermark gone",
        "went_on",
        put_back_an_older_journal,
        "StateRollbackError",
        ("summary.json says",),
    ),
    Case(
        "initial_cash changed between restarts",
        "crashed",
        nothing,
        "StateMismatchError",
        ("initial_cash: journal 100000.0, now 50000.0",),
        config={"broker__initial_cash": "50000.0"},
    ),
    Case(
        "commission changed between restarts",
        "stopped",
        nothing,
        "StateMismatchError",
        ("costs: journal",),
        config={"broker__commission": "0.001"},
    ),
    Case(
        "strategy parameters changed",
        "crashed",
        nothing,
        "StateMismatchError",
        ('params: journal {}, now {"entry": 0.7}',),
        config={"run__params": "{ entry = 0.7 }"},
    ),
    Case(
        "another strategy",
        "stopped",
        nothing,
        "StateMismatchError",
        ('strategy: journal "MLStrategy", now "Momentum"',),
        config={"run__strategy": f'"{ROOT / "examples" / "momentum.py"}:Momentum"'},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_state_is_refused_untouched_before_any_bar(
    case: Case, runs: Runs, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    shutil.copytree(getattr(runs, case.start_from), state)
    case.damage(state, runs)
    before = _fingerprint(state)
    door = ClosedDoor()
    try:
        proc = daemon(write_config(tmp_path, door.url, **case.config), *case.flags)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == EXIT_REFUSED, err
        assert f"tradeloop: error: {case.error}: " in err
        for words in case.says:
            assert words in err
        assert "Traceback" not in err
        logged = [json.loads(line) for line in out.splitlines()]
        assert [r["error"] for r in logged if r["event"] == "daemon_error"] == [case.error]
        assert door.knocks() == 0  # it never reached the market
    finally:
        door.close()
    assert _fingerprint(state) == before


def test_read_only_state_dir_is_refused_before_any_bar(runs: Runs, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(runs.crashed, state)
    before = _fingerprint(state)
    door = ClosedDoor()
    try:
        proc = daemon(write_config(tmp_path, door.url), prefix=read_only(state))
        _, err = proc.communicate(timeout=60)
        assert door.knocks() == 0
    finally:
        door.close()
    assert proc.returncode == EXIT_REFUSED, err
    assert "tradeloop: error: StateStorageError: " in err
    assert "Read-only file system" in err or "Permission denied" in err
    assert _fingerprint(state) == before


def test_second_daemon_on_a_state_dir_is_refused_naming_the_first(
    runs: Runs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, runs.url)
    first = daemon(config)
    json_lines(first.stdout, "daemon_started")  # type: ignore[arg-type]
    second = daemon(config)
    _, err = second.communicate(timeout=60)
    assert second.returncode == EXIT_REFUSED
    assert f"state_dir is in use by the daemon with pid {first.pid}" in err
    assert f"kill -TERM {first.pid}" in err
    _, err = first.communicate(timeout=120)  # the first one is unharmed
    assert first.returncode == 0, err
    assert_ends_like_the_backtest(tmp_path / "state")


def test_fresh_archives_the_earlier_run_and_starts_over(runs: Runs, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(runs.stopped, state)
    delete_journal(state, runs)
    kept = _fingerprint(state)
    proc = daemon(write_config(tmp_path, runs.url), "--fresh")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    archived = json.loads(next(x for x in out.splitlines() if '"state_archived"' in x))["to"]
    assert _fingerprint(Path(archived)) == kept  # moved whole, nothing deleted
    assert_ends_like_the_backtest(state)


def test_restored_backup_resumes_from_its_last_bar(runs: Runs, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(runs.went_on, state)
    put_back_an_older_journal(state, runs)
    proc = daemon(write_config(tmp_path, runs.url), "--restored")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    restored = json.loads(next(x for x in out.splitlines() if '"journal_restored"' in x))
    assert restored["seq"] == _seq(runs.backup) < restored["run_had"]
    assert_ends_like_the_backtest(state)


def test_lost_watermark_beside_an_intact_journal_resumes(runs: Runs, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(runs.crashed, state)
    (state / "journal.seq").unlink()
    proc = daemon(write_config(tmp_path, runs.url))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '"event": "state_restored"' in out
    assert_ends_like_the_backtest(state)


def _file_size_limit(limit_bytes: int) -> Callable[[], None]:
    def limit() -> None:  # in the child, before exec (Python ignores SIGXFSZ: writes fail)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def test_disk_full_mid_run_stops_with_a_storage_error_and_loses_nothing(
    runs: Runs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, runs.url)
    # the -wal outgrows 1 MB about a third into the run: every later write fails (EFBIG)
    proc = daemon(config, preexec_fn=_file_size_limit(1 << 20))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_REFUSED, err
    assert "tradeloop: error: StateStorageError: " in err
    assert "cannot commit a timestamp" in err
    assert "Traceback" not in err
    state = tmp_path / "state"
    assert _seq(state / "journal.sqlite") > 0
    again = daemon(config)  # space freed: it resumes after the last commit
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert_ends_like_the_backtest(state)


def test_state_files_are_private_whatever_the_umask(runs: Runs, tmp_path: Path) -> None:
    config = write_config(tmp_path, runs.url)
    proc = daemon(config, preexec_fn=lambda: os.umask(0))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    kill = subprocess.run(
        [sys.executable, "-m", "tradeloop", "kill", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(0),
    )
    assert kill.returncode in (0, 3), kill.stderr  # 3: no daemon answered (none runs)
    state = tmp_path / "state"
    modes = {
        str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777)
        for p in [state, *state.rglob("*")]
    }
    assert "state/control.json" in modes
    assert "state/result" in modes
    assert modes == {name: ("0o700" if (tmp_path / name).is_dir() else "0o600") for name in modes}
