"""The error map, row by row: each documented answer injected into the fake Binance, and what
the client then does (raise which typed error, look up, resync, wait); the README's table is
the same table as ``errors.RULES``."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from adapters.binance.errors import RULES, Category, ClockSkewError, classify, ws_error_for

from adapters.binance import BinanceClient
from tests.adapters.binance.fake_binance import FakeBinance
from tests.adapters.binance.recorded import payload
from tradeloop.errors import (
    ConfigError,
    ConnectionLostError,
    DuplicateOrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.events import OrderType, Side
from tradeloop.venue import VenueOrder

README = Path(__file__).parents[3] / "adapters" / "binance" / "README.md"
CID = "tl" + "0123456789abcdef0123456789abcd"
BUY = VenueOrder(CID, "BTCUSDT", Side.BUY, 0.5, OrderType.LIMIT, limit_price=95.0)
BY_KEY = {rule.key: rule for rule in RULES}

# what a submit raises for each category (NOT_FOUND rows are exercised by a lookup)
SUBMIT_RAISES: dict[Category, type[Exception]] = {
    Category.DUPLICATE: DuplicateOrderError,  # it exists: LiveBroker looks it up
    Category.REJECTED: OrderRejectedError,
    Category.FATAL_CONFIG: ConfigError,
    Category.RATE_LIMITED: RateLimitError,
    Category.UNKNOWN: OutcomeUnknownError,
    Category.CLOCK_SKEW: OrderRejectedError,  # refused twice (the second after a resync)
}
# what a read (GET /api/v3/account, for the snapshot) raises for each category
READ_RAISES: dict[Category, type[Exception]] = {
    Category.REJECTED: VenueProtocolError,
    Category.FATAL_CONFIG: ConfigError,
    Category.RATE_LIMITED: RateLimitError,
    Category.UNKNOWN: ConnectionLostError,
    Category.CLOCK_SKEW: ConnectionLostError,
}


def status_of(key: str) -> int:
    """The HTTP status Binance answers the row with (the docs pair -2015 with 401)."""
    rule = BY_KEY[key]
    if rule.status is not None:
        return {500: 503, 400: 400}.get(rule.status, rule.status)
    return {-2015: 401, -2014: 401, -1002: 401}.get(rule.code or 0, 400)


def inject(fake: FakeBinance, method: str, path: str, key: str, *, times: int = 1) -> None:
    rule = BY_KEY[key]
    status = status_of(key)
    for _ in range(times):
        if key == "HTTP other":
            fake.inject(method, path, 202, text="accepted?")
        elif rule.code is None:
            wait = {"Retry-After": "0.1"}
            fake.inject(method, path, status, text="<html>blocked</html>", headers=wait)
        else:
            msg = rule.message or "Some message."
            fake.inject(method, path, status, rule.code, msg, headers={"Retry-After": "0.1"})


def test_error_map_readme_table_is_the_rules() -> None:
    row = re.compile(r"^\| `([^`]+)` \|[^|]*\| (\w+) \|[^|]*\| \[[^\]]*\]\(([^)]+)\)", re.M)
    rows = row.findall(README.read_text())
    assert rows == [(r.key, r.category.value, r.doc) for r in RULES]


@pytest.mark.parametrize("key", [r.key for r in RULES])
async def test_error_map_row_injected_into_the_fake(
    key: str, client: BinanceClient, fake: FakeBinance
) -> None:
    rule = BY_KEY[key]
    if rule.category is Category.NOT_FOUND:
        inject(fake, "GET", "/api/v3/order", key)
        assert await client.order(CID, "BTCUSDT") is None
        return
    if key.startswith("-2011"):
        inject(fake, "DELETE", "/api/v3/order", key)
        raises = ConfigError if rule.category is Category.FATAL_CONFIG else OrderRejectedError
        with pytest.raises(raises, match=re.escape(str(rule.code))):
            await client.cancel(CID, "BTCUSDT")
        return
    times = 2 if rule.category is Category.CLOCK_SKEW else 1
    inject(fake, "POST", "/api/v3/order", key, times=times)
    synced = fake.requests.count(("GET", "/api/v3/time"))
    with pytest.raises(SUBMIT_RAISES[rule.category]) as raised:
        await client.submit(BUY)
    assert f"HTTP {202 if key == 'HTTP other' else status_of(key)}" in str(raised.value)
    if rule.category is Category.FATAL_CONFIG:
        assert "Fix: " in str(raised.value)
    if rule.category is Category.CLOCK_SKEW:  # resynced once, resent once, then refused
        assert fake.requests.count(("GET", "/api/v3/time")) == synced + 1
    if rule.category is Category.RATE_LIMITED:  # held: the next request is not even sent
        sent = len(fake.requests)
        with pytest.raises(RateLimitError, match="not sent"):
            await client.snapshot()
        assert len(fake.requests) == sent
    if rule.category is Category.DUPLICATE:
        assert "look it up" in str(raised.value)
    assert not fake.orders  # none of these answers placed anything


@pytest.mark.parametrize(
    "key", ["-1003", "-1022", "-1121", "-1001", "-1021", "HTTP 5XX", "HTTP 4XX", "HTTP 403"]
)
async def test_error_map_row_on_a_read_raises_by_category(
    key: str, client: BinanceClient, fake: FakeBinance
) -> None:
    rule = BY_KEY[key]
    inject(fake, "GET", "/api/v3/account", key, times=2)
    with pytest.raises(READ_RAISES[rule.category]):
        await client.snapshot()


async def test_error_map_5xx_after_accept_is_unknown_and_the_lookup_finds_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.inject("POST", "/api/v3/order", 503, text="Service Unavailable", after_accept=True)
    with pytest.raises(OutcomeUnknownError, match="execution status unknown"):
        await client.submit(BUY)
    found = await client.order(CID, "BTCUSDT")
    assert found is not None
    assert fake.requests.count(("POST", "/api/v3/order")) == 1  # never resubmitted


async def test_error_map_filter_failure_drops_the_cached_rules(
    client: BinanceClient, fake: FakeBinance
) -> None:
    await client.instruments(["BTCUSDT"])
    fake.inject("POST", "/api/v3/order", 400, -1013, "Filter failure: LOT_SIZE")
    with pytest.raises(OrderRejectedError, match="LOT_SIZE"):
        await client.submit(BUY)
    assert "BTCUSDT" not in client.rules  # fetched again before the next submit
    await client.submit(BUY)
    assert fake.requests.count(("GET", "/api/v3/exchangeInfo")) == 2


@pytest.mark.parametrize(
    ("status", "code", "msg", "key"),
    [
        (400, -2011, "Unknown order sent.", "-2011 Unknown order sent."),
        (400, -2011, "Order was not canceled due to cancel restrictions.", "-2011"),
        (400, -2010, "Duplicate order sent.", "-2010 Duplicate order sent."),
        (400, -2010, "Market is closed.", "-2010 Market is closed."),
        (400, -2010, "Order would trigger immediately.", "-2010"),
        (429, -1015, "Too many new orders.", "HTTP 429"),
        (418, -1003, "Way too much request weight used", "HTTP 418"),
        (401, -2015, "Invalid API-key, IP, or permissions for action.", "-2015"),
        (503, None, "", "HTTP 5XX"),
        (504, -1007, "Timeout waiting for response from backend server.", "-1007"),
        (400, -1100, "Illegal characters found in a parameter.", "HTTP 4XX"),
    ],
)
def test_classify_reads_the_message_where_the_code_means_several_things(
    status: int, code: int | None, msg: str, key: str
) -> None:
    assert classify(status, code, msg).key == key


def test_ws_error_for_418_waits_until_retry_after() -> None:
    frame = payload("ws_api_error_418.json")
    error = ws_error_for(frame, what="subscribe", request="subscribe")
    # retryAfter 1659146400000 − serverTime 1659142907531 = 3492.469 s
    assert isinstance(error, RateLimitError)
    assert error.retry_after_s == pytest.approx(3492.469)
    skew = ws_error_for(payload("ws_api_error.json"), what="subscribe", request="subscribe")
    assert isinstance(skew, ClockSkewError)
    assert isinstance(
        ws_error_for({"status": "x"}, what="s", request="subscribe"), VenueProtocolError
    )
    body = orjson.dumps({"status": 401, "error": {"code": -2015, "msg": "Invalid API-key"}})
    assert isinstance(ws_error_for(orjson.loads(body), what="s", request="subscribe"), ConfigError)
