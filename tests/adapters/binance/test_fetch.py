"""``tradeloop fetch binance`` against the fake Binance: paged klines, rate limits, resume.

The fake serves ``GET /api/v3/klines`` as documented
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints
#klinecandlestick-data: ``startTime``/``endTime`` inclusive on open times, at most ``limit``
rows, 429/418 with ``Retry-After``). Kline ``k`` of symbol number ``i`` opens at
``T0 + k min`` with open ``100 (i + 1) + k``, high ``+2``, low ``-1``, close ``+1`` and volume
``10 + k`` (``FakeBinance.kline``), so every expected bar below is written out from that rule.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import polars as pl
import pytest
from aiohttp import web

from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import T0_MS, FakeBinance
from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import ConfigError, ConnectionLostError, RateLimitError
from tradeloop.stream.fetch import FetchReport, fetch_history

MIN_NS = 60_000_000_000
T0_NS = T0_MS * 1_000_000  # 2022-12-31 19:43 UTC
DAY0_NS = T0_NS - (19 * 60 + 43) * MIN_NS  # 2022-12-31 00:00 UTC: the first window's start
ROOT = Path(__file__).resolve().parents[3]


def expected(symbols: tuple[str, ...], first: int, last: int) -> pl.DataFrame:
    """Bars ``first..last`` (inclusive) of each symbol, from the fake's price rule."""
    rows = [
        (T0_NS + k * MIN_NS, s, 100.0 * (i + 1) + k, float(10 + k))
        for i, s in enumerate(symbols)
        for k in range(first, last + 1)
    ]
    frame = pl.DataFrame(rows, schema=["ts_ns", "asset_id", "open", "volume"], orient="row")
    return frame.with_columns(
        high=pl.col("open") + 2, low=pl.col("open") - 1, close=pl.col("open") + 1
    ).select("ts_ns", "asset_id", "open", "high", "low", "close", "volume")


def stored(out: Path) -> pl.DataFrame:
    frame = HistoricalFeed(out, signal_columns=[]).frame()
    return frame.drop("source_row").sort("asset_id", "ts_ns")


async def fetch(
    fake: FakeBinance, out: Path, first: int, end: int, **options: object
) -> FetchReport:
    return await fetch_history(
        "binance",
        list(fake.symbols),
        out,
        start_ns=T0_NS + first * MIN_NS,
        end_ns=T0_NS + end * MIN_NS,
        settings={**fake.settings, "request_timeout_s": 2.0},
        backoff_s=0.01,
        **{"progress": False, **options},  # type: ignore[arg-type]
    )


async def test_fetch_pages_klines_into_daily_files_that_match_the_venue(
    fake: FakeBinance, tmp_path: Path
) -> None:
    fake.published = 1500  # bars 0..1499 closed; 1500 still forming
    report = await fetch(fake, tmp_path, 0, 1450)
    assert stored(tmp_path).equals(expected(fake.symbols, 0, 1449))
    # windows: 2022-12-31 19:43 → 24:00 (257 bars), 2023-01-01 00:00 → 19:53 (1193 bars)
    assert report.windows == 4
    assert report.bars == 2 * 1450
    names = sorted(p.name for p in (tmp_path / "asset_id=BTCUSDT").iterdir())
    assert names == ["2022-12-31T00-00.parquet", "2023-01-01T00-00.parquet"]
    # 1193 bars at limit 1000 take two pages; the 257 fit in one: 3 requests per symbol
    assert len(fake.kline_requests) == 6
    assert {r["interval"] for r in fake.kline_requests} == {"1m"}
    second_page = [r for r in fake.kline_requests if r["symbol"] == "BTCUSDT"][2]
    assert int(second_page["startTime"]) == T0_MS + (257 + 999) * 60_000 + 1


async def test_fetch_rerun_fetches_only_what_is_missing(fake: FakeBinance, tmp_path: Path) -> None:
    fake.published = 1500
    await fetch(fake, tmp_path, 0, 100)
    before = len(fake.kline_requests)
    again = await fetch(fake, tmp_path, 0, 100)
    assert again.windows == 0
    assert len(fake.kline_requests) == before
    longer = await fetch(fake, tmp_path, 0, 1450)
    assert longer.windows == 4  # the first day grew, the next is new
    assert stored(tmp_path).equals(expected(fake.symbols, 0, 1449))


async def test_fetch_waits_out_a_429_and_gets_every_bar(fake: FakeBinance, tmp_path: Path) -> None:
    fake.published = 200
    fake.retry_after_s = "0.05"
    fake.statuses = [429, 429]
    report = await fetch(fake, tmp_path, 0, 100)
    assert report.retries == 2
    assert stored(tmp_path).equals(expected(fake.symbols, 0, 99))


async def test_fetch_refuses_to_sleep_through_a_long_ban(fake: FakeBinance, tmp_path: Path) -> None:
    fake.published = 200
    fake.retry_after_s = "600"
    fake.statuses = [418]
    with pytest.raises(RateLimitError, match="wait 600 s") as caught:
        await fetch(fake, tmp_path, 0, 100, max_wait_s=60.0)
    assert caught.value.retry_after_s == 600.0


async def test_fetch_gives_up_after_its_retries_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    class Failing(FakeBinance):
        async def _klines(self, request: web.Request) -> web.Response:
            if request.query["symbol"] == "ETHUSDT":
                return web.json_response({"code": -1000, "msg": "An unknown error"}, status=500)
            return await super()._klines(request)

    fake = Failing(api_key=API_KEY, api_secret=API_SECRET)
    await fake.start()
    try:
        fake.published = 200
        with pytest.raises(ConnectionLostError, match="after 2 retries"):
            await fetch(fake, tmp_path, 0, 100, retries=2)
    finally:
        await fake.close()
    assert stored(tmp_path).equals(expected(("BTCUSDT",), 0, 99))


async def test_fetch_interval_goes_to_the_adapter(fake: FakeBinance, tmp_path: Path) -> None:
    fake.published = 10
    await fetch(fake, tmp_path, 0, 5, interval="5m")
    assert {r["interval"] for r in fake.kline_requests} == {"5m"}


async def test_fetch_unknown_interval_is_refused_before_any_request(
    fake: FakeBinance, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="interval"):
        await fetch(fake, tmp_path, 0, 5, interval="7m")
    assert fake.kline_requests == []


class SlowBinance(FakeBinance):
    """Klines answered 50 ms late, so a fetch of 16 windows is still running when killed."""

    async def _klines(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return await super()._klines(request)


@pytest.mark.slow
async def test_fetch_killed_midway_resumes_with_no_missing_or_duplicate_bar(
    tmp_path: Path,
) -> None:
    fake = SlowBinance(api_key=API_KEY, api_secret=API_SECRET)
    await fake.start()
    fake.published = 2 * 1440 + 10
    out = tmp_path / "data"
    # 2022-12-31 19:43 → 2023-01-02 19:43: three daily windows per symbol (257, 1440 and
    # 1183 bars), six files in all
    command = [
        sys.executable,
        "-m",
        "tradeloop",
        "fetch",
        "binance",
        "BTCUSDT,ETHUSDT",
        "--start",
        "2022-12-31T19:43",
        "--end",
        "2023-01-02T19:43",
        "--out",
        str(out),
        "--set",
        f"rest_url=http://127.0.0.1:{fake.port}",
        "--set",
        "klines_limit=100",  # 2 × 2880 bars in pages of 100: about 60 slow requests
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        first = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3000):  # up to 60 s
            if len(list(out.glob("asset_id=*/*.parquet"))) >= 2:
                break
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        written = sorted(out.glob("asset_id=*/*.parquet"))
        assert 2 <= len(written) < 6, "the kill must land midway: some windows, not all"
        requests_before = len(fake.kline_requests)
        second = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 0, err.decode()
    finally:
        await fake.close()
    assert stored(out).equals(expected(fake.symbols, 0, 2 * 1440 - 1))
    assert not list(out.rglob("*.tmp"))
    # the resumed run asked again only for windows not yet written
    resumed = fake.kline_requests[requests_before:]
    done = {(p.parent.name.removeprefix("asset_id="), p.stem[:10]) for p in written}
    for request in resumed:
        day = pl.from_epoch(pl.Series([int(request["startTime"])]), time_unit="ms")[0]
        assert (request["symbol"], f"{day:%Y-%m-%d}") not in done
    assert b"holds 5,760 bars of 2 asset(s)" in err


async def test_fetch_progress_bar_counts_windows_on_stderr(
    fake: FakeBinance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.published = 1500
    await fetch(fake, tmp_path, 0, 1450, progress=True)
    err = capsys.readouterr().err
    assert "fetch binance" in err
    assert "4/4" in err  # four windows: two days × two symbols
    assert "ETHUSDT 2023-01-01T00-00 bars=2900" in err
