"""A fake Binance per test, and a started client against it (keys from the environment)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.binance import VENUE, BinanceClient
from tests.adapters.binance.fake_binance import FakeBinance
from tradeloop.config import SupervisionSettings
from tradeloop.service.tasks import Supervisor, TaskHandle
from tradeloop.venue import Execution

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    server = FakeBinance(api_key=API_KEY, api_secret=API_SECRET)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(fake: FakeBinance, keys: None) -> AsyncIterator[BinanceClient]:
    venue_client = VENUE.client({**fake.settings, "request_timeout_s": 2.0})
    await venue_client.start()
    yield venue_client
    await venue_client.close()


class Fills:
    """Runs ``client.executions()`` as the daemon does: under the real ``Supervisor``, called
    again after each failure (a rate limit's ``retry_after_s`` waited out); keeps what it
    yields. ``error`` is why the stream is lost (a ``ConfigError`` at once), else None."""

    def __init__(self, client: BinanceClient) -> None:
        self.items: list[Execution] = []
        self._client = client
        settings = SupervisionSettings(base_backoff_s=0.01, max_backoff_s=30.0)
        self.supervisor = Supervisor(settings, seed=0)
        self.supervisor.spawn("execution_stream", self._run, books_money=True)

    async def _run(self, handle: TaskHandle) -> None:
        async for execution in self._client.executions():
            handle.restored()
            self.items.append(execution)

    @property
    def error(self) -> str | None:
        return self.supervisor.lost().get("execution_stream")

    @property
    def restarts(self) -> int:
        return self.supervisor.restarts["execution_stream"]

    async def until(self, n: int, timeout_s: float = 5.0) -> list[Execution]:
        async with asyncio.timeout(timeout_s):
            while len(self.items) < n:  # noqa: ASYNC110 (polling a list is the simplest probe)
                await asyncio.sleep(0.01)
        return self.items

    async def close(self) -> None:
        await self.supervisor.close()


async def subscribed(fake: FakeBinance, n: int = 1) -> None:
    async with asyncio.timeout(5):
        while fake.subscriptions < n or not fake.user_sockets:  # noqa: ASYNC110 (a probe)
            await asyncio.sleep(0.01)
