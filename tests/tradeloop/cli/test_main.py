"""The ``tradeloop`` entry point: ``--version``, and a reader that goes away (``| head``)."""

from __future__ import annotations

import subprocess
import sys

from tests.tradeloop.test_cli import SAMPLE, STRATEGY, VIX, tradeloop
from tradeloop import __version__


def test_cli_version_prints_the_package_version() -> None:
    out = tradeloop("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"tradeloop {__version__}"


def test_cli_json_into_a_closed_pipe_exits_quietly() -> None:
    # the reader closes before the command has written anything (like `| head -0`): every
    # write then meets EPIPE, which must end the command without a traceback
    command = [sys.executable, "-m", "tradeloop", "backtest", "--data", str(SAMPLE)]
    command += ["--strategy", STRATEGY, "--context", str(VIX), "--json", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert err.decode() == ""
    assert process.returncode == 141


def test_cli_json_piped_into_head_prints_the_first_lines_only() -> None:
    shell = f"{sys.executable} -m tradeloop backtest --data {SAMPLE} --strategy {STRATEGY} "
    shell += "--json --no-progress | head -2"
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.splitlines()[0] == "{"
    assert "Traceback" not in out.stderr
    assert "BrokenPipeError" not in out.stderr
