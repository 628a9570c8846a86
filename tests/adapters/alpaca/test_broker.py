"""AlpacaClient against the fake Alpaca: orders, rejections, unknown outcomes resolved by client
id, rate limits, cancels, the snapshot, and fills from trade_updates (duplicated, reordered,
partial, missed during a drop)."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV
from adapters.alpaca.errors import AlpacaAuthError
from structlog.testing import capture_logs

from adapters.alpaca import VENUE, AlpacaClient
from tests.adapters.alpaca.fake_venue import (
    KEY_ID,
    SECRET,
    FakeAlpaca,
    client_for,
    listening,
    minute_ns,
)
from tradeloop.broker.live import LiveBroker
from tradeloop.errors import (
    ConnectionLostError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
)
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.reconcile import reconcile
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, load_venue

ENV = {KEY_ID_ENV: KEY_ID, SECRET_ENV: SECRET}
CID = "tl" + "0123456789abcdef" * 2  # the journal's shape: tl + 30 hex (here 32)


def limit_buy(cid: str = CID, qty: float = 10.0, price: float = 126.5) -> VenueOrder:
    return VenueOrder(cid, "AAPL", Side.BUY, qty, OrderType.LIMIT, price, None, TimeInForce.DAY)


async def next_fills(client: AlpacaClient, n: int) -> list[Execution]:
    stream = client.executions()
    out: list[Execution] = []
    async with asyncio.timeout(5.0):
        while len(out) < n:
            out.append(await anext(stream))
    return out


def test_venue_is_found_by_name_through_the_entry_points() -> None:
    assert load_venue("alpaca") is VENUE
    assert VENUE.name == "alpaca"


async def test_submit_places_the_order_and_returns_the_venues_view(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    state = await client.submit(limit_buy())
    (order,) = fake.orders.values()
    assert (order["client_order_id"], order["qty"], order["limit_price"]) == (CID, "10", "126.5")
    assert (order["type"], order["time_in_force"], order["side"]) == ("limit", "day", "buy")
    assert state.client_order_id == CID
    assert state.venue_order_id == order["id"]
    assert (state.status, state.qty, state.filled_qty) == (OrderStatus.ACCEPTED, 10.0, 0.0)
    assert await client.order(CID, "AAPL") == state


async def test_a_long_client_id_round_trips_as_ours(fake: FakeAlpaca, client: AlpacaClient) -> None:
    ours = "run 7|MLStrategy|2024-03-04T14:30|AAPL|buy|order 1"
    state = await client.submit(limit_buy(ours))
    (order,) = fake.orders.values()
    assert order["client_order_id"] != ours
    assert len(order["client_order_id"]) <= 48
    assert state.client_order_id == ours
    assert (await client.order(ours, "AAPL")).client_order_id == ours  # type: ignore[union-attr]


async def test_a_refused_order_raises_rejected_with_the_venues_message(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.reject_next = (403, "http_error_403_buying_power.json")
    with pytest.raises(OrderRejectedError, match="403: insufficient buying power"):
        await client.submit(limit_buy())
    assert fake.orders == {}


async def test_a_malformed_order_is_rejected_without_being_sent(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    with pytest.raises(OrderRejectedError, match="needs a limit price"):
        await client.submit(VenueOrder(CID, "AAPL", Side.BUY, 1.0, OrderType.LIMIT))
    assert ("POST", "/v2/orders") not in fake.requests


async def test_a_5xx_after_the_order_was_accepted_is_unknown_and_found_by_client_id(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.accept_then_status = 500
    with pytest.raises(OutcomeUnknownError, match="may exist: look it up"):
        await client.submit(limit_buy())
    state = await client.order(CID, "AAPL")
    assert state is not None
    assert state.status is OrderStatus.ACCEPTED
    assert len(fake.orders) == 1  # placed once, never resubmitted
    assert sum(r == ("POST", "/v2/orders") for r in fake.requests) == 1


async def test_a_timeout_after_the_order_was_accepted_is_unknown_and_found_by_client_id(
    fake: FakeAlpaca,
) -> None:
    fake.accept_then_hang_s = 1.0
    alpaca = client_for(fake, request_timeout_s=0.3)
    await alpaca.start()
    try:
        with pytest.raises(OutcomeUnknownError, match="no answer"):
            await alpaca.submit(limit_buy())
        assert (await alpaca.order(CID, "AAPL")) is not None
    finally:
        await alpaca.close()
    assert len(fake.orders) == 1


async def test_resubmitting_a_placed_client_id_returns_the_existing_order(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    first = await client.submit(limit_buy())
    again = await client.submit(limit_buy())  # 422 client_order_id must be unique
    assert again.venue_order_id == first.venue_order_id
    assert len(fake.orders) == 1


async def test_an_unknown_client_id_is_none(client: AlpacaClient) -> None:
    assert await client.order("tl-never-sent", "AAPL") is None


async def test_429_on_submit_raises_with_retry_after_and_holds_further_submits(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.rate_limit.append(("/v2/orders", {"Retry-After": "2"}))
    with pytest.raises(RateLimitError) as caught:
        await client.submit(limit_buy())
    assert 1.9 <= caught.value.retry_after_s <= 2.0
    sent = len(fake.requests)
    with pytest.raises(RateLimitError, match="holds for"):
        await client.submit(limit_buy("tl-second"))
    assert len(fake.requests) == sent  # nothing was sent while the limit holds
    assert fake.orders == {}


async def test_429_on_a_read_waits_the_retry_after_then_succeeds(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.rate_limit.append(("/v2/account", {"Retry-After": "1"}))
    started = asyncio.get_running_loop().time()
    snapshot = await client.snapshot()
    assert asyncio.get_running_loop().time() - started >= 0.9
    assert snapshot.cash == 100_000.0
    assert client.rate_limited == 1


async def test_remaining_zero_holds_requests_until_the_reset(fake: FakeAlpaca) -> None:
    alpaca = client_for(fake)
    await alpaca.start()
    try:
        reset = str(int(alpaca.clock()) + 31)  # a Unix time, as Alpaca sends it
        fake.next_headers = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": reset}
        await alpaca.order(CID, "AAPL")  # its answer carries the headers
        with pytest.raises(RateLimitError) as caught:
            await alpaca.submit(limit_buy())
        assert 29 <= caught.value.retry_after_s <= 31
        with pytest.raises(RateLimitError):
            await alpaca.order(CID, "AAPL")  # a read does not wait 30 s either
    finally:
        await alpaca.close()
    assert fake.orders == {}


async def test_cancel_cancels_an_open_order_and_refuses_a_closed_or_unknown_one(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    await client.submit(limit_buy())
    await client.cancel(CID, "AAPL")
    assert (await client.order(CID, "AAPL")).status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    with pytest.raises(OrderRejectedError, match="already cancelled"):
        await client.cancel(CID, "AAPL")
    with pytest.raises(OrderRejectedError, match="no such order"):
        await client.cancel("tl-never-sent", "AAPL")


async def test_snapshot_has_cash_signed_positions_and_open_orders(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    buy = await client.submit(limit_buy(qty=10))
    sell = await client.submit(
        VenueOrder("tl-short", "SPY", Side.SELL, 2.0, OrderType.MARKET, tif=TimeInForce.DAY)
    )
    fake.fill(buy.venue_order_id, 4, 126.48)
    fake.fill(sell.venue_order_id, 2, 389.12)
    snapshot = await client.snapshot()
    assert snapshot.cash == pytest.approx(100_000 - 4 * 126.48 + 2 * 389.12)
    assert snapshot.positions == {"AAPL": 4.0, "SPY": -2.0}
    assert [(o.client_order_id, o.status, o.filled_qty) for o in snapshot.open_orders] == [
        (CID, OrderStatus.PARTIALLY_FILLED, 4.0)
    ]


async def test_fills_sent_twice_and_out_of_order_are_yielded_once_each_by_execution_id(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    fake.duplicate_updates = True
    state = await client.submit(limit_buy(qty=10))
    updates = [
        fake.fill(state.venue_order_id, q, p) for q, p in ((3, 126.5), (4, 126.4), (3, 126.3))
    ]
    stream = client.executions()
    first = await anext(stream)  # connected, listening, caught up (all three are in REST)
    fills = [first, *[await asyncio.wait_for(anext(stream), 5.0) for _ in range(2)]]
    await fake.send_updates(*reversed(updates))  # out of order, each one twice: all seen
    assert sorted((f.qty, f.price) for f in fills) == [(3.0, 126.3), (3.0, 126.5), (4.0, 126.4)]
    assert sum(f.qty for f in fills) == 10.0
    assert {f.trade_id for f in fills} == {u["data"]["execution_id"] for u in updates}
    assert {f.client_order_id for f in fills} == {CID}
    assert client.caught_up == 3
    with pytest.raises(TimeoutError):  # the six stream copies are all repeats: nothing more
        await asyncio.wait_for(anext(stream), 0.5)
    # the REST view of the same fills carries the same trade ids (a restart books none twice)
    recent = await client.recent_executions(min(f.ts_ns for f in fills))
    assert {f.trade_id: f for f in recent} == {f.trade_id: f for f in fills}
    assert client.id_mismatches == 0


async def test_the_documented_error_frame_raises_and_the_next_connection_catches_up_once(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """https://docs.alpaca.markets/docs/websocket-streaming#error-messages: the server sends
    {"action":"error"} and closes. The stream raises (it never ends quietly); calling
    executions() again, as the supervisor does, re-authenticates, re-listens and books what
    the gap missed from the FILL activities, once."""
    state = await client.submit(limit_buy(qty=10))
    stream, waiting = await listening(fake, client)
    update = fake.fill(state.venue_order_id, 4, 126.5)
    await fake.send_updates(update)
    first = await asyncio.wait_for(waiting, 5.0)
    await fake.trade_error("internal server error")
    with pytest.raises(ConnectionLostError, match=r'"action":"error"\} \(internal server error\)'):
        await asyncio.wait_for(anext(stream), 5.0)
    missed = fake.fill(state.venue_order_id, 6, 126.4)  # nobody listening: only REST knows
    before = client.caught_up
    again = client.executions()
    second = await asyncio.wait_for(anext(again), 5.0)  # the catch-up
    assert (first.trade_id, second.trade_id) == (
        update["data"]["execution_id"],
        missed["data"]["execution_id"],
    )
    assert (second.qty, second.price, second.order_done) == (6.0, 126.4, True)
    assert client.stream_connections == 2
    assert fake.trade_connections == 2
    with pytest.raises(TimeoutError):  # the first fill, re-read by the catch-up, is not repeated
        await asyncio.wait_for(anext(again), 0.5)
    assert client.caught_up == before + 1


async def test_start_with_wrong_keys_is_fatal_with_a_fix_hint(fake: FakeAlpaca) -> None:
    alpaca = client_for(fake, {KEY_ID_ENV: KEY_ID, SECRET_ENV: "not-the-secret-000"})
    with pytest.raises(AlpacaAuthError, match=r"401.*APCA_API_SECRET_KEY"):
        await alpaca.start()
    await alpaca.close()


async def test_submit_partial_fills_cancel_snapshot_as_the_live_broker_drives_it(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    state = await client.submit(limit_buy(qty=10))
    await fake.send_updates(fake.fill(state.venue_order_id, 4, 126.48))
    await fake.send_updates(fake.fill(state.venue_order_id, 2, 126.45))
    fills = await next_fills(client, 2)
    assert [(f.qty, f.price) for f in fills] == [(4.0, 126.48), (2.0, 126.45)]
    assert (await client.order(CID, "AAPL")).filled_qty == 6.0  # type: ignore[union-attr]
    await client.cancel(CID, "AAPL")
    final = await client.order(CID, "AAPL")
    assert final is not None
    assert (final.status, final.filled_qty) == (OrderStatus.CANCELLED, 6.0)
    assert final.avg_fill_price == pytest.approx((4 * 126.48 + 2 * 126.45) / 6, abs=1e-4)
    snapshot = await client.snapshot()
    assert snapshot.positions == {"AAPL": 6.0}
    assert snapshot.open_orders == []
    assert snapshot.cash == pytest.approx(100_000 - 4 * 126.48 - 2 * 126.45)


async def test_a_rest_fill_whose_id_differs_from_the_streams_keeps_the_streams_id(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """The docs do not say in words that a FILL activity's uuid is the trade_updates
    execution_id; if the venue's differ, the same fill (order, quantity after it) must still
    be one trade id, or a catch-up would book it twice."""
    fake.activity_ids_differ = True
    state = await client.submit(limit_buy(qty=10))
    stream, waiting = await listening(fake, client)
    update = fake.fill(state.venue_order_id, 4, 126.5)
    await fake.send_updates(update)
    first = await asyncio.wait_for(waiting, 5.0)  # from the stream
    assert first.trade_id == update["data"]["execution_id"]
    recent = await client.recent_executions(0)  # REST names it by another uuid
    assert fake.activities[0]["id"].split("::")[1] != first.trade_id
    assert [f.trade_id for f in recent] == [first.trade_id]
    assert client.id_mismatches == 1
    await stream.aclose()  # type: ignore[attr-defined]


async def test_fees_come_with_their_ids_once_and_make_cash_agree_with_the_account(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """Cash worked out by hand: 100000 − 4 × 126.48 (a buy) − 0.02 − 0.01 (the FEE and CFEE
    activities) = 99494.05; the account says the same. Through the real LiveBroker and
    reconciliation (which books each fee once, from the run's start on), the book's cash is
    the account's with no difference and no adjustment (the tolerance is 1 cent: a fee
    booked with the wrong sign would be 6 cents off)."""
    started_ns = minute_ns(0) - 1
    broker = LiveBroker(client, 100_000.0, fractional=True, client_id=lambda o: "tl-fees")
    broker.ledger.account_fees["since_ns"] = started_ns  # the run started before the fees
    broker.book.marks["AAPL"] = 126.5
    broker.submit("AAPL", Side.BUY, 10.0, order_type=OrderType.LIMIT, limit_price=126.5)
    await broker.send()
    venue_id = next(iter(fake.orders))
    fake.fill(venue_id, 4, 126.48)
    taf = fake.charge_fee(0.02)
    cfee = fake.charge_fee(0.01, "BTC/USD", "CFEE")
    fees = await client.fees(minute_ns(0))
    assert [(f.fee_id, f.amount) for f in fees] == [(taf["id"], 0.02), (cfee["id"], 0.01)]
    assert await client.fees(minute_ns(0)) == fees  # the same ids again: the caller books once
    gate = PreTradeGate()
    gate.bind(broker)
    with capture_logs() as logs:
        found = await reconcile(
            broker, gate, on_mismatch="halt", since_ns=0, log=structlog.get_logger()
        )
    assert found == []
    assert [x["event"] for x in logs if x["event"].startswith("reconcil")] == ["reconciled"]
    assert broker.cash == pytest.approx(99_494.05, abs=1e-9)
    assert (await client.snapshot()).cash == pytest.approx(broker.cash, abs=1e-9)
    assert broker.ledger.account_fees["ids"] == [taf["id"], cfee["id"]]
    assert gate.mode is GateMode.NORMAL


async def test_live_broker_books_every_fill_once_across_error_frames_and_ends_as_the_venue(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """The issue's failure, in small: fills keep coming while trade_updates sends its error
    frame three times. Restarting ``executions()`` after each error, as the daemon's
    supervisor does, the real ``LiveBroker`` books every fill once and ends with the venue's
    position and cash (worked out by hand below)."""
    broker = LiveBroker(client, 100_000.0, fractional=True, client_id=lambda o: f"tl-sup-{o.id}")
    broker.book.marks["AAPL"] = 126.5
    order = broker.submit("AAPL", Side.BUY, 10.0, order_type=OrderType.LIMIT, limit_price=126.5)
    await broker.send()
    venue_id = next(iter(fake.orders))
    restarts = 0
    all_booked = asyncio.Event()

    async def book() -> None:  # the supervised task: restart on ConnectionLostError
        nonlocal restarts
        while True:
            try:
                async for execution in client.executions():
                    broker.apply(execution)
                    if broker.position("AAPL") >= 9.0:
                        all_booked.set()
            except ConnectionLostError:
                restarts += 1

    task = asyncio.create_task(book())
    try:
        for qty, price in ((2, 126.5), (3, 126.4), (1, 126.3)):
            await asyncio.wait_for(fake.trade_listening.wait(), 5.0)
            await fake.send_updates(fake.fill(venue_id, qty, price))
            await fake.trade_error("internal server error")
            fake.fill(venue_id, 1, 126.2)  # while nobody listens: only REST knows
        await asyncio.wait_for(all_booked.wait(), 5.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert restarts == 3
    assert broker.position("AAPL") == fake.positions["AAPL"] == 9.0  # 2 + 3 + 1 + 3 × 1
    # 100000 − (2×126.5 + 3×126.4 + 1×126.3 + 3×126.2) = 100000 − 1137.1 = 98862.9
    assert broker.cash == pytest.approx(98_862.9, abs=1e-9)
    assert broker.cash == pytest.approx(fake.cash, abs=1e-9)
    assert len(broker.trade_ids) == len(set(broker.trade_ids)) == 6
    assert order.filled_qty == 9.0


async def test_order_events_other_than_fills_come_out_of_executions_as_order_states(
    fake: FakeAlpaca, client: AlpacaClient
) -> None:
    """tradeloop.venue: executions() may yield order updates, which settle an unknown
    outcome at once; the stream's ``canceled`` event must not be dropped."""
    state = await client.submit(limit_buy(qty=1))
    stream, waiting = await listening(fake, client)
    await client.cancel(state.client_order_id, "AAPL")
    update = await asyncio.wait_for(waiting, 5.0)
    assert isinstance(update, VenueOrderState)
    assert (update.client_order_id, update.status) == (state.client_order_id, OrderStatus.CANCELLED)
    await stream.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("frames", ["binary", "text"])
async def test_trade_updates_are_read_from_binary_or_text_frames(
    fake: FakeAlpaca, client: AlpacaClient, frames: str
) -> None:
    """The docs say the paper endpoint sends binary frames (the fake's default); read both."""
    fake.trade_frames = frames
    state = await client.submit(limit_buy(qty=1))
    stream, waiting = await listening(fake, client)
    update = fake.fill(state.venue_order_id, 1, 126.5)
    await fake.send_updates(update)
    fill = await asyncio.wait_for(waiting, 5.0)
    assert (fill.trade_id, fill.qty, fill.order_done) == (update["data"]["execution_id"], 1.0, True)
    await stream.aclose()  # type: ignore[attr-defined]
