"""What the venues' end-to-end tests share: a fake venue on its own event loop (so the test
can block on subprocesses), and a `tradeloop live` daemon started as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any


class VenueThread:
    """``make()`` (a coroutine building and starting the fake) run on a private loop."""

    def __init__(self, make: Callable[[], Awaitable[Any]]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake: Any = self.call(make())

    def call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def spawn(self, coro: Awaitable[Any]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def close(self) -> None:
        self.call(self.fake.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def write_live_config(
    tmp_path: Path, strategy: str, venue: str, settings: dict[str, Any], extra: str = ""
) -> Path:
    (tmp_path / "strategy.py").write_text(strategy)
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    config = tmp_path / "live.toml"
    config.write_text(
        f'[run]\nmode = "live"\nstrategy = "{tmp_path / "strategy.py"}:Flip"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        "[feed]\nstale_after_s = 1.0\n"
        f'[health]\nhost = "127.0.0.1"\nport = 0\n{extra}'
        f'[venue]\nname = "{venue}"\n{table}'
    )
    return config


def start_live(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tradeloop", "live", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--confirm-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def wait_for(stream: IO[str] | None, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Read the daemon's JSON log lines until ``event``; return that line."""
    assert stream is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError(f"the daemon ended before logging {event!r}")
        record: dict[str, Any] = json.loads(line)
        if record.get("event") == event:
            return record
    raise AssertionError(f"no {event!r} within {timeout_s} s")
