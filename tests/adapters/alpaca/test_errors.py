"""The error map, row by row: each documented answer is injected into the fake Alpaca on
127.0.0.1 and the client's behaviour checked (the typed error, or what it returns). Every row
is also a row of the table in ``adapters/alpaca/README.md`` (a test keeps the two together).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV, AlpacaSettings
from adapters.alpaca.errors import (
    AlpacaAuthError,
    AuthTimeoutError,
    ConnectionLimitError,
    Operation,
    Outcome,
    SubscriptionLimitError,
    classify_http,
)
from adapters.alpaca.feed import AlpacaFeed

from adapters.alpaca import AlpacaClient
from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET, FakeAlpaca, client_for, listening
from tradeloop.errors import (
    ConfigError,
    ConnectionLostError,
    DuplicateOrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrder

ENV = {KEY_ID_ENV: KEY_ID, SECRET_ENV: SECRET}
README = Path(__file__).parents[3] / "adapters" / "alpaca" / "README.md"
ORDER = VenueOrder("tl-map-1", "AAPL", Side.BUY, 1.0, OrderType.LIMIT, 126.5, None, TimeInForce.DAY)


# -- HTTP: (surface, status, payload file) → the outcome the README names, and the error -------

SUBMIT = [
    (401, "http_error_401.json", "fatal-config", AlpacaAuthError),
    (400, "http_error_400.json", "rejected", OrderRejectedError),
    (403, "http_error_403_buying_power.json", "rejected", OrderRejectedError),
    (422, "http_error_422_subpenny.json", "rejected", OrderRejectedError),
    (422, "http_error_422_fractional_gtc.json", "rejected", OrderRejectedError),
    (429, "http_error_429.json", "rate-limited", RateLimitError),
    (500, "http_error_500.json", "unknown", OutcomeUnknownError),
    (503, "http_error_503.json", "unknown", OutcomeUnknownError),
]


@pytest.mark.parametrize(("status", "name", "outcome", "error"), SUBMIT)
async def test_submit_answer_maps_to_its_row(
    fake: FakeAlpaca,
    client: AlpacaClient,
    status: int,
    name: str,
    outcome: str,
    error: type[Exception],
) -> None:
    fake.fail_next.append(("POST", "/v2/orders", status, name))
    with pytest.raises(error) as caught:
        await client.submit(ORDER)
    assert type(caught.value) is error or error is OutcomeUnknownError
    assert str(status) in str(caught.value)
    assert fake.requests.count(("POST", "/v2/orders")) == 1  # never retried on its own
    assert readme_row("POST /v2/orders", status, outcome)


async def test_submit_422_client_id_not_unique_returns_the_existing_order(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    first = await client.submit(ORDER)
    again = await client.submit(ORDER)  # the fake answers 422 "client_order_id must be unique"
    assert again.venue_order_id == first.venue_order_id
    assert fake.refusals == ["http_error_422_unique.json"]
    assert readme_row("POST /v2/orders", 422, "exists: look it up")


async def test_submit_422_client_id_not_unique_but_not_visible_yet_is_unknown(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    await client.submit(ORDER)
    fake.lookup_misses = 1  # the lookup right after the 422 does not see it yet
    # DuplicateOrderError (ClientIdExistsError): it exists, LiveBroker keeps looking it up
    with pytest.raises(DuplicateOrderError, match=r"must be unique.*look it up by client order id"):
        await client.submit(ORDER)
    assert len(fake.orders) == 1
    state = await client.order(ORDER.client_order_id, "AAPL")  # the next lookup does
    assert state is not None
    assert state.status is OrderStatus.ACCEPTED


async def test_lookup_404_is_none_and_a_later_lookup_finds_the_order(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    await client.submit(ORDER)
    fake.lookup_misses = 1  # 404 right after the submit: "not seen yet", not "never placed"
    assert await client.order(ORDER.client_order_id, "AAPL") is None
    assert await client.order(ORDER.client_order_id, "AAPL") is not None
    assert readme_row("GET /v2/orders:by_client_order_id", 404, "not found")


@pytest.mark.parametrize(
    ("status", "name", "outcome", "error"),
    [
        (404, "http_error_404.json", "rejected", OrderRejectedError),
        (422, "http_error_422_not_cancelable.json", "rejected", OrderRejectedError),
        (500, "http_error_500.json", "retry", OutcomeUnknownError),
        (429, "http_error_429.json", "rate-limited", RateLimitError),
    ],
)
async def test_cancel_answer_maps_to_its_row(
    fake: FakeAlpaca,
    client: AlpacaClient,
    status: int,
    name: str,
    outcome: str,
    error: type[Exception],
) -> None:
    await client.submit(ORDER)
    fake.fail_next.append(("DELETE", "/v2/orders/", status, name))
    with pytest.raises(error, match=str(status)):
        await client.cancel(ORDER.client_order_id, "AAPL")
    assert readme_row("DELETE /v2/orders/{id}", status, outcome)


async def test_read_5xx_is_retried_then_answers(fake: FakeAlpaca, client: AlpacaClient) -> None:
    fake.fail_next.append(("GET", "/v2/account", 503, "http_error_503.json"))
    snapshot = await client.snapshot()
    assert snapshot.cash == 100_000.0
    assert client.rest.retried == 1
    assert readme_row("GET (reads)", 503, "retry")


async def test_read_5xx_every_time_gives_up_as_unknown(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.fail_next.extend([("GET", "/v2/positions", 500, "http_error_500.json")] * 3)
    with pytest.raises(OutcomeUnknownError, match="gave up after 3 tries"):
        await client.snapshot()


@pytest.mark.parametrize(
    ("status", "name"), [(401, "http_error_401.json"), (403, "http_error_403_forbidden.json")]
)
async def test_read_401_or_403_is_fatal_config(
    fake: FakeAlpaca, client: AlpacaClient, status: int, name: str
) -> None:
    fake.fail_next.append(("GET", "/v2/account", status, name))
    with pytest.raises(AlpacaAuthError, match=rf"{status}.*Fix: check APCA_API_KEY_ID"):
        await client.snapshot()
    assert readme_row("GET (reads)", status, "fatal-config")


async def test_read_429_short_is_waited_out_long_raises(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.rate_limit.append(("/v2/account", {"Retry-After": "0.2"}))
    assert (await client.snapshot()).cash == 100_000.0
    reset = str(int(client.clock()) + 60)
    fake.rate_limit.append(("/v2/account", {"X-Ratelimit-Reset": reset}))  # no Retry-After
    with pytest.raises(RateLimitError) as caught:
        await client.snapshot()
    assert 58 <= caught.value.retry_after_s <= 60
    assert readme_row("GET (reads)", 429, "rate-limited")


async def test_asset_404_is_fatal_config(client: AlpacaClient) -> None:
    with pytest.raises(ConfigError, match=r"no asset 'BOGUS'.*Fix"):
        await client.instruments(["BOGUS"])
    assert readme_row("GET /v2/assets/{symbol}", 404, "fatal-config")


def test_every_operation_and_status_has_exactly_one_outcome() -> None:
    for operation in Operation:
        for status in (*range(200, 205), *range(400, 432), *range(500, 512)):
            outcome = classify_http(operation, status, "")
            assert (outcome is None) == (status < 300)
            assert outcome is None or isinstance(outcome, Outcome)


# -- the market data stream: {"T":"error","code":..} -------------------------------------------

DATA = [
    (400, VenueProtocolError, "fatal-config"),
    (401, VenueProtocolError, "fatal-config"),
    (402, AlpacaAuthError, "fatal-config"),
    (403, VenueProtocolError, "fatal-config"),
    (404, AuthTimeoutError, "retry"),
    (405, SubscriptionLimitError, "fatal-config"),
    (406, ConnectionLimitError, "retry"),
    (407, ConnectionLostError, "retry"),
    (408, SubscriptionLimitError, "fatal-config"),
    (409, SubscriptionLimitError, "fatal-config"),
    (410, VenueProtocolError, "fatal-config"),
    (500, ConnectionLostError, "retry"),
]


@pytest.mark.parametrize(("code", "error", "outcome"), DATA)
async def test_data_stream_error_code_maps_to_its_row(
    fake: FakeAlpaca, code: int, error: type[Exception], outcome: str
) -> None:
    fake.auth_error = code
    feed = AlpacaFeed(AlpacaSettings.from_mapping(fake.settings(), ENV))
    with pytest.raises(error, match=str(code)) as caught:
        await asyncio.wait_for(anext(feed.messages()), 5.0)
    assert type(caught.value) is error
    # SupervisedFeed reconnects on ConnectionLostError only: a "retry" row must be one
    assert isinstance(caught.value, ConnectionLostError) is (outcome == "retry")
    assert "Fix:" in str(caught.value) or outcome == "retry"
    assert readme_row("data stream", code, outcome)


# -- the trade_updates stream ------------------------------------------------------------------


async def test_trade_stream_error_frame_is_retry(fake: FakeAlpaca, client: AlpacaClient) -> None:
    _fills, waiting = await listening(fake, client)
    await fake.trade_error("internal server error")
    with pytest.raises(ConnectionLostError, match="internal server error"):
        await asyncio.wait_for(waiting, 5.0)
    assert readme_row("trade_updates", '{"action":"error"}', "retry")


async def test_trade_stream_closed_without_a_frame_is_retry_never_a_quiet_end(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    _fills, waiting = await listening(fake, client)
    await fake.drop_trade_clients()
    with pytest.raises(ConnectionLostError, match="trade_updates closed"):
        await asyncio.wait_for(waiting, 5.0)
    assert readme_row("trade_updates", "closed", "retry")


async def test_submit_without_an_answer_is_unknown(fake: FakeAlpaca) -> None:
    fake.accept_then_hang_s = 1.0
    alpaca = client_for(fake, request_timeout_s=0.3)
    await alpaca.start()
    try:
        with pytest.raises(OutcomeUnknownError, match=r"no answer.*look it up"):
            await alpaca.submit(ORDER)
    finally:
        await alpaca.close()
    assert len(fake.orders) == 1  # it was placed: a lookup finds it, a resend would double it
    assert readme_row("POST /v2/orders", "no answer", "unknown")


async def test_trade_stream_unauthorized_is_fatal_config(fake: FakeAlpaca) -> None:
    table = fake.settings(trade_updates_url=f"ws://127.0.0.1:{fake.port}/stream")
    alpaca = AlpacaClient(AlpacaSettings.from_mapping(table, ENV))
    await alpaca.start()
    alpaca.settings = AlpacaSettings.from_mapping(
        table, {KEY_ID_ENV: KEY_ID, SECRET_ENV: "not-the-secret-000"}
    )  # REST still has the good keys; the stream sends the wrong ones
    try:
        with pytest.raises(AlpacaAuthError, match=r"access key verification failed.*Fix"):
            await asyncio.wait_for(anext(alpaca.executions()), 5.0)
    finally:
        await alpaca.close()
    assert readme_row("trade_updates", "unauthorized", "fatal-config")


async def test_our_client_sends_only_text_frames_and_the_fake_refuses_binary(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    _fills, waiting = await listening(fake, client)
    feed = AlpacaFeed(AlpacaSettings.from_mapping(fake.settings(), ENV))
    stream = feed.messages()
    subscribing = asyncio.ensure_future(anext(stream))
    await asyncio.wait_for(fake.subscribed.wait(), 5.0)
    assert fake.refused_frames == 0  # auth, listen, auth, subscribe: all text
    for task in (waiting, subscribing):
        task.cancel()
    await asyncio.gather(waiting, subscribing, return_exceptions=True)
    await stream.aclose()  # type: ignore[attr-defined]
    session = client.rest.session
    async with session.ws_connect(f"ws://127.0.0.1:{fake.port}/stream") as ws:
        await ws.send_bytes(b'{"action":"auth","key":"k","secret":"s"}')
        answer = await ws.receive()
    assert b'"action": "error"' in answer.data
    assert fake.refused_frames == 1


# -- the README table --------------------------------------------------------------------------


def readme_row(surface: str, code: Any, outcome: str) -> bool:
    """The README's error map has a row for (surface, code) that names this outcome."""
    rows = [line for line in README.read_text().splitlines() if line.startswith("| ")]
    prefix = f"| {surface} | {code} |"
    return any(line.startswith(prefix) and f"| {outcome} |" in line for line in rows)
