"""The fake Binance refuses what Binance refuses, spoken to over raw HTTP: the docs' own signed
requests (query string, form body, both mixed), filters, precision, mandatory parameters,
duplicate ids, unknown orders, the three answer shapes (ACK/RESULT/FULL), order/test.

The signed examples are those of "SIGNED Endpoint Examples for POST /api/v3/order"
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/request-security): the
docs' key, secret, parameters and signatures, sent as the docs' curl commands send them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from adapters.binance.codec import signed_query

from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance
from tests.adapters.binance.recorded import payload

DOCS_TS = 1499827319559
DOCS_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
DOCS_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
DOCS_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOCS_MIXED_SIG = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.5",
    "price": "95",
    "newClientOrderId": "c1",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": API_KEY}


@pytest.fixture
async def http(fake: FakeBinance) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{fake.port}") as session:
        yield session


async def send(
    http: aiohttp.ClientSession, method: str, path: str, query: str = "", body: str = ""
) -> tuple[int, Any]:
    url = f"{path}?{query}" if query else path
    async with http.request(method, url, data=body or None, headers=FORM) as response:
        return response.status, orjson.loads(await response.read())


async def signed(
    http: aiohttp.ClientSession, method: str, path: str, **params: str
) -> tuple[int, Any]:
    now_ms = time.time_ns() // 1_000_000
    query = signed_query(params, API_SECRET, timestamp_ms=now_ms, recv_window_ms=5000)
    return await send(http, method, path, query=query)


def at_docs_time(fake: FakeBinance) -> None:
    """Set the fake's clock so that the docs' timestamp is inside its recvWindow."""
    fake.clock_ahead_ms = DOCS_TS + 100 - time.time_ns() // 1_000_000


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("", f"{DOCS_QUERY}&{DOCS_BODY}&signature={DOCS_SIG}"),  # example 1: request body
        (f"{DOCS_QUERY}&{DOCS_BODY}&signature={DOCS_SIG}", ""),  # example 2: query string
        (DOCS_QUERY, f"{DOCS_BODY}&signature={DOCS_MIXED_SIG}"),  # example 3: mixed
    ],
)
async def test_fake_accepts_the_docs_signed_examples(
    query: str, body: str, fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    at_docs_time(fake)
    status, answer = await send(http, "POST", "/api/v3/order", query, body)
    assert status == 200, answer
    # a LIMIT order answers FULL by default: RESULT's fields and its (here empty) fills
    assert set(answer) == set(payload("http_post_order_full.json"))
    assert (answer["symbol"], answer["origQty"], answer["price"], answer["fills"]) == (
        "LTCBTC",
        "1.00000000",
        "0.10000000",
        [],
    )


async def test_fake_refuses_a_tampered_body_and_a_stale_timestamp(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    at_docs_time(fake)
    tampered = DOCS_BODY.replace("quantity=1", "quantity=2")
    status, answer = await send(
        http, "POST", "/api/v3/order", DOCS_QUERY, f"{tampered}&signature={DOCS_MIXED_SIG}"
    )
    assert (status, answer["code"]) == (400, -1022)
    fake.clock_ahead_ms += 6_000  # now the docs' timestamp is 6 s old: outside recvWindow 5000
    status, answer = await send(
        http, "POST", "/api/v3/order", DOCS_QUERY, f"{DOCS_BODY}&signature={DOCS_MIXED_SIG}"
    )
    assert (status, answer["code"]) == (400, -1021)
    assert not fake.orders


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"type": "MARKET", "quantity": "0.30000000000000004"}, -1111, "'quantity' has too much"),
        ({"type": "MARKET", "quantity": "0.123456789"}, -1111, "'quantity' has too much"),
        ({"type": "MARKET", "quantity": "1e-05"}, -1100, "Illegal characters"),
        ({"type": "MARKET", "quantity": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
        ({"type": "MARKET", "quantity": "121"}, -1013, "Filter failure: MARKET_LOT_SIZE"),
        ({"type": "MARKET", "quantity": "0.01"}, -1013, "Filter failure: NOTIONAL"),
        ({"price": "95.001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"price": "95.123456789"}, -1111, "'price' has too much precision"),
        ({"quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
        ({"timeInForce": ""}, -1102, "Mandatory parameter 'timeInForce'"),
        ({"type": "MARKET", "timeInForce": "GTC", "quantity": "0.1"}, -1106, "'timeInForce'"),
        ({"quantity": "1000"}, -2010, "insufficient balance"),
        ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
        ({"newClientOrderId": "has space"}, -1100, "newClientOrderId"),
    ],
)
async def test_fake_refuses_what_binance_refuses(
    params: dict[str, str], code: int, msg: str, fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    order = dict(LIMIT_BUY)
    order |= params
    if order["type"] == "MARKET" and "timeInForce" not in params:
        del order["timeInForce"], order["price"]
    order = {k: v for k, v in order.items() if v != ""}
    status, answer = await signed(http, "POST", "/api/v3/order", **order)
    assert (status, answer["code"]) == (400, code)
    assert msg in answer["msg"]
    assert not fake.orders
    assert not fake.trades  # MARKET 0.123456789 BTC is never filled


async def test_fake_min_notional_filter_of_older_symbols(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    # LTCBTC has MIN_NOTIONAL 0.0001 BTC: 0.001 LTC × 0.05 = 0.00005 is too little
    order = {
        "symbol": "LTCBTC",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "0.05",
    }
    status, answer = await signed(http, "POST", "/api/v3/order", **order)
    assert (status, answer["msg"]) == (400, "Filter failure: MIN_NOTIONAL")


@pytest.mark.parametrize("kind", ["ACK", "RESULT", "FULL"])
async def test_fake_answers_each_new_order_resp_type_in_its_shape(
    kind: str, fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.25",
        "newOrderRespType": kind,
    }
    status, answer = await signed(http, "POST", "/api/v3/order", **order)
    shape = {"ACK": "http_post_order_ack.json", "RESULT": "http_post_order.json"}
    assert status == 200
    assert set(answer) == set(payload(shape.get(kind, "http_post_order_full.json")))
    if kind == "FULL":  # the fill at the fake's price, 100, with a 0.1 % fee in USDT
        assert [(f["price"], f["qty"], f["commission"]) for f in answer["fills"]] == [
            ("100.00000000", "0.25000000", "0.02500000")
        ]


async def test_fake_duplicate_client_id_only_among_open_orders(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    order = dict(LIMIT_BUY)
    assert (await signed(http, "POST", "/api/v3/order", **order))[0] == 200
    status, answer = await signed(http, "POST", "/api/v3/order", **order)
    assert (status, answer["code"], answer["msg"]) == (400, -2010, "Duplicate order sent.")
    cancel = {"symbol": "BTCUSDT", "origClientOrderId": "c1"}
    assert (await signed(http, "DELETE", "/api/v3/order", **cancel))[0] == 200
    status, answer = await signed(http, "DELETE", "/api/v3/order", **cancel)
    assert (status, answer["code"], answer["msg"]) == (400, -2011, "Unknown order sent.")
    assert (await signed(http, "POST", "/api/v3/order", **order))[0] == 200  # no longer open
    missing = {"symbol": "BTCUSDT", "origClientOrderId": "never"}
    status, answer = await signed(http, "GET", "/api/v3/order", **missing)
    assert (status, answer["code"], answer["msg"]) == (400, -2013, "Order does not exist.")


async def test_fake_order_test_checks_everything_and_places_nothing(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    good = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.25"}
    assert await signed(http, "POST", "/api/v3/order/test", **good) == (200, {})
    status, answer = await signed(http, "POST", "/api/v3/order/test", **good | {"quantity": "1e-3"})
    assert (status, answer["code"]) == (400, -1100)
    assert not fake.orders


async def test_fake_refuses_missing_or_wrong_keys_and_a_long_recv_window(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    async with http.get("/api/v3/account?timestamp=1&signature=0") as response:
        assert (response.status, (await response.json())["code"]) == (401, -2014)
    fake.api_key = "another key"
    assert (await signed(http, "GET", "/api/v3/account"))[1]["code"] == -2015
    fake.api_key = API_KEY
    now_ms = time.time_ns() // 1_000_000
    query = signed_query({}, API_SECRET, timestamp_ms=now_ms, recv_window_ms=60_001)
    assert (await send(http, "GET", "/api/v3/account", query))[1]["code"] == -1131


async def test_fake_resting_buy_locks_its_quote_until_cancelled(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.balances = {"USDT": [100.0], "BTC": [0.0]}
    order = LIMIT_BUY | {"quantity": "1"}
    await signed(http, "POST", "/api/v3/order", **order)
    assert fake.balances["USDT"] == [5, 95]  # 1 × 95 locked
    status, answer = await signed(
        http, "POST", "/api/v3/order", **order | {"newClientOrderId": "c2"}
    )
    assert (status, answer["code"]) == (400, -2010)  # 5 USDT free: not enough for another
    await signed(http, "DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="c1")
    assert fake.balances["USDT"] == [100, 0]
