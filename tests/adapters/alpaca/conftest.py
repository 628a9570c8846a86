"""A fake Alpaca per test, and a started client against it (the test account's keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.alpaca import AlpacaClient
from tests.adapters.alpaca.fake_venue import FakeAlpaca, client_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpaca]:
    venue = await FakeAlpaca().start()
    yield venue
    await venue.close()


@pytest.fixture
async def client(fake: FakeAlpaca) -> AsyncIterator[AlpacaClient]:
    alpaca = client_for(fake)
    await alpaca.start()
    yield alpaca
    await alpaca.close()
