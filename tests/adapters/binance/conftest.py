"""A fake Binance per test, and a started client against it (keys from the environment)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.binance import VENUE, BinanceClient
from tests.adapters.binance.fake_binance import FakeBinance

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
