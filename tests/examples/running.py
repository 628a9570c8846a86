"""Run an example the way a user does (``python examples/X.py``) and read what it printed.

Each run is a fresh subprocess of this interpreter with ``-W error`` (pytest's own warning
filter), in a temporary working directory, with ``TRADELOOP_EXAMPLES_DIR`` pointing at a
``work`` directory inside it: examples that write files put them there, never into the
repository. ``load_example`` imports an example's functions without running its ``main``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATA = EXAMPLES / "data"


@dataclass(frozen=True)
class Run:
    """What one run of an example did."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cwd: Path
    workdir: Path

    def assert_ok(self, writes: frozenset[str] = frozenset()) -> None:
        """Exit 0, something printed, and files written only into the work directory."""
        assert self.returncode == 0, f"{self.name} exited {self.returncode}:\n{self.stderr}"
        assert self.stdout.strip(), f"{self.name} printed nothing"
        assert sorted(p.name for p in self.cwd.iterdir()) == ["work"]
        assert {p.name for p in self.workdir.iterdir()} == set(writes)


def run_script(name: str, cwd: Path, *, workdir: bool = True, timeout_s: float = 120.0) -> Run:
    """Run ``examples/<name>`` in ``cwd`` (with ``cwd/work`` as TRADELOOP_EXAMPLES_DIR)."""
    env = {k: v for k, v in os.environ.items() if k != "TRADELOOP_EXAMPLES_DIR"}
    work = cwd / "work"
    if workdir:
        work.mkdir()
        env["TRADELOOP_EXAMPLES_DIR"] = str(work)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return Run(
        name,
        done.returncode,
        done.stdout,
        done.stderr,
        time.perf_counter() - started,
        cwd,
        work if workdir else cwd,
    )


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>`` as a module (its ``if __name__ == "__main__"`` part skipped)."""
    path = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and numba caching look modules up by name
    spec.loader.exec_module(module)
    return module


def number(pattern: str, text: str) -> float:
    """The number captured by ``pattern`` in ``text`` (thousands separators allowed)."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in output:\n{text}"
    value = float(found.group(1).replace(",", ""))
    assert math.isfinite(value)
    return value
