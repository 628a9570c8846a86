"""``fetch_history`` for Alpaca against the fake: ``next_page_token`` paging, keys, 429, interval.

The fake serves ``GET /v2/stocks/bars`` as documented
(https://docs.alpaca.markets/reference/stockbars: ``start``/``end`` inclusive RFC-3339,
``limit`` rows a page grouped by symbol, ``next_page_token`` until null). Minute ``i`` of a
symbol is the recorded bar of that symbol (``payloads/ws_bars_batch.json``) with open
``o + 0.01 i``, high ``+0.2``, low ``-0.1``, close ``+0.05`` and volume ``v + i``
(``FakeAlpaca.bar``); the expected frames below follow that rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl
import pytest
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV

from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET, FakeAlpaca, minute_ns, payload
from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import ConfigError
from tradeloop.stream.fetch import FetchReport, fetch_history


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpaca]:
    venue = await FakeAlpaca().start()
    for i in range(10):
        await venue.publish(i)
    yield venue
    await venue.close()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ID_ENV, KEY_ID)
    monkeypatch.setenv(SECRET_ENV, SECRET)


def expected(symbols: tuple[str, ...], minutes: range) -> pl.DataFrame:
    template = {bar["S"]: bar for bar in payload("ws_bars_batch.json")}
    rows = []
    for symbol in symbols:
        o, v = template[symbol]["o"], template[symbol]["v"]
        for i in minutes:
            base = o + 0.01 * i
            rows.append(
                (
                    minute_ns(i),
                    symbol,
                    round(base, 4),
                    round(base + 0.2, 4),
                    round(base - 0.1, 4),
                    round(base + 0.05, 4),
                    float(v + i),
                )
            )
    schema = ["ts_ns", "asset_id", "open", "high", "low", "close", "volume"]
    return pl.DataFrame(rows, schema=schema, orient="row")


async def fetch(
    fake: FakeAlpaca, out: Path, first: int, end: int, **options: object
) -> FetchReport:
    return await fetch_history(
        "alpaca",
        list(fake.symbols),
        out,
        start_ns=minute_ns(first),
        end_ns=minute_ns(end),
        settings={k: v for k, v in fake.settings().items() if k != "symbols"},
        progress=False,
        backoff_s=0.01,
        **options,  # type: ignore[arg-type]
    )


async def test_fetch_follows_page_tokens_and_stores_every_bar(
    fake: FakeAlpaca, keys: None, tmp_path: Path
) -> None:
    report = await fetch(fake, tmp_path, 0, 8)
    frame = HistoricalFeed(tmp_path, signal_columns=[]).frame().drop("source_row")
    assert frame.sort("asset_id", "ts_ns").equals(expected(fake.symbols, range(8)))
    assert report.bars == 16
    # one symbol per request, 8 bars in pages of 3: three requests each, tokens on the 2nd, 3rd
    assert [r["symbols"] for r in fake.bar_requests] == ["AAPL"] * 3 + ["SPY"] * 3
    assert ["page_token" in r for r in fake.bar_requests] == [False, True, True] * 2
    assert {r["end"] for r in fake.bar_requests} == {"2024-03-04T14:37:59.999999999Z"}


async def test_fetch_retries_a_429_and_loses_no_bar(
    fake: FakeAlpaca, keys: None, tmp_path: Path
) -> None:
    fake.rate_limit = [("/v2/stocks/bars", {"Retry-After": "0"})]
    report = await fetch(fake, tmp_path, 0, 4)
    assert report.retries == 1
    frame = HistoricalFeed(tmp_path, signal_columns=[]).frame().drop("source_row")
    assert frame.sort("asset_id", "ts_ns").equals(expected(fake.symbols, range(4)))


async def test_fetch_without_keys_says_which_variables_to_set(
    fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(KEY_ID_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ID_ENV):
        await fetch(fake, tmp_path, 0, 4)
    assert fake.bar_requests == []


async def test_fetch_other_interval_is_refused_with_the_way_out(
    fake: FakeAlpaca, keys: None, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"only 1m bars can be fetched, not 5m.*--interval 1m"):
        await fetch(fake, tmp_path, 0, 4, interval="5m")
    assert fake.bar_requests == []
