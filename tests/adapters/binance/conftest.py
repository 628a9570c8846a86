"""A fake Binance per test, and a started client against it (keys from the environment)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from adapters.binance import VENUE, BinanceClient
from tests.adapters.binance.fake_binance import FakeBinance
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
    """Runs ``client.executions()`` in the background and keeps what it yields."""

    def __init__(self, client: BinanceClient) -> None:
        self.items: list[Execution] = []
        self._stream: AsyncIterator[Execution] = client.executions()
        self.error: BaseException | None = None  # what ended the stream, if anything did
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for execution in self._stream:
                self.items.append(execution)
        except Exception as err:  # the test asserts on it
            self.error = err

    async def until(self, n: int, timeout_s: float = 5.0) -> list[Execution]:
        async with asyncio.timeout(timeout_s):
            while len(self.items) < n:  # noqa: ASYNC110 (polling a list is the simplest probe)
                await asyncio.sleep(0.01)
        return self.items

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def subscribed(fake: FakeBinance, n: int = 1) -> None:
    async with asyncio.timeout(5):
        while fake.subscriptions < n or not fake.user_sockets:  # noqa: ASYNC110 (a probe)
            await asyncio.sleep(0.01)
