"""BinanceClient against the fake venue: orders, lookups, the account, fills, and the faults
(clock skew, 429 then 418, 5xx and timeouts after accept, duplicate and out-of-order reports,
partial fills, a dropped user stream); secrets never reach a log line or an error."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import structlog
from structlog.testing import capture_logs

from adapters.binance import VENUE, BinanceClient
from tests.adapters.binance.conftest import API_KEY, API_SECRET, Fills, subscribed
from tests.adapters.binance.fake_binance import FakeBinance
from tradeloop.broker.live import LiveBroker
from tradeloop.errors import (
    ConfigError,
    DuplicateOrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
)
from tradeloop.events import OrderStatus, OrderType, Side
from tradeloop.logs import configure_logging
from tradeloop.risk.gate import GateMode, PreTradeGate
from tradeloop.service.reconcile import reconcile
from tradeloop.venue import VenueOrder

CID = "tl" + "0123456789abcdef0123456789abcd"  # the journal's id shape


def limit_buy(cid: str = CID, qty: float = 0.5, price: float = 95.0) -> VenueOrder:
    return VenueOrder(cid, "BTCUSDT", Side.BUY, qty, OrderType.LIMIT, limit_price=price)


async def test_submit_market_order_is_filled(client: BinanceClient, fake: FakeBinance) -> None:
    order = VenueOrder(CID, "BTCUSDT", Side.BUY, 0.25, OrderType.MARKET)
    state = await client.submit(order)
    # the fake fills at its last price, 100.0
    assert (state.client_order_id, state.status, state.filled_qty) == (
        CID,
        OrderStatus.FILLED,
        0.25,
    )
    assert state.avg_fill_price == 100.0
    assert client.rest.used_weight_1m > 0  # read from X-MBX-USED-WEIGHT-1M


async def test_submit_limit_then_lookup_and_cancel(client: BinanceClient) -> None:
    state = await client.submit(limit_buy())
    assert state.status == OrderStatus.ACCEPTED
    assert (await client.order(CID, "BTCUSDT")).status == OrderStatus.ACCEPTED  # type: ignore[union-attr]
    await client.cancel(CID, "BTCUSDT")
    after = await client.order(CID, "BTCUSDT")
    assert after is not None
    assert after.status == OrderStatus.CANCELLED
    with pytest.raises(OrderRejectedError, match="-2011"):
        await client.cancel(CID, "BTCUSDT")  # nothing open any more


async def test_order_never_sent_is_none(client: BinanceClient) -> None:
    assert await client.order("tl-never-sent", "BTCUSDT") is None  # -2013


async def test_duplicate_open_client_id_means_it_exists_look_it_up(
    client: BinanceClient, fake: FakeBinance
) -> None:
    await client.submit(limit_buy())
    # -2010 "Duplicate order sent.": the id is in use by an open order, so the order EXISTS
    with pytest.raises(DuplicateOrderError, match=r"-2010.*Duplicate order sent.*look it up"):
        await client.submit(limit_buy())
    found = await client.order(CID, "BTCUSDT")
    assert found is not None
    assert found.status == OrderStatus.ACCEPTED
    assert len(fake.orders) == 1


async def test_filter_rules_refuse_locally_and_insufficient_balance_at_the_venue(
    client: BinanceClient, fake: FakeBinance
) -> None:
    # 0.00001 BTC × 95 = 0.00095 USDT, below BTCUSDT's NOTIONAL minimum of 5: never sent
    with pytest.raises(OrderRejectedError, match=r"instrument min_notional: .*0\.00095000 < 5$"):
        await client.submit(limit_buy(qty=0.00001))
    assert ("POST", "/api/v3/order") not in fake.requests
    with pytest.raises(OrderRejectedError, match=r"-2010.*insufficient balance"):
        await client.submit(limit_buy("tl-big", qty=1000.0))


async def test_client_ids_that_do_not_fit_are_mapped_and_come_back(
    client: BinanceClient, fake: FakeBinance
) -> None:
    ours = "run 7/strategy:momentum/order#12 with a long tail"
    state = await client.submit(limit_buy(ours))
    venue_ids = [cid for _, cid in fake.orders]
    assert venue_ids[0] != ours
    assert len(venue_ids[0]) == 36
    assert state.client_order_id == ours
    assert (await client.order(ours, "BTCUSDT")) is not None


async def test_clock_skew_resyncs_and_retries_once(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.clock_ahead_ms = 20_000  # the server's clock jumped after our sync: -1021 at first
    times_before = fake.requests.count(("GET", "/api/v3/time"))
    state = await client.submit(limit_buy())
    assert state.status == OrderStatus.ACCEPTED
    assert fake.requests.count(("POST", "/api/v3/order")) == 2  # refused, then accepted
    assert fake.requests.count(("GET", "/api/v3/time")) == times_before + 1
    assert len(fake.orders) == 1
    assert 19_000 < client.rest.offset_ms < 21_000


async def test_rate_limit_429_then_418_blocks_instead_of_retrying(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.statuses = [429, 418]
    fake.retry_after_s = "0.3"
    with pytest.raises(RateLimitError) as limited:
        await client.submit(limit_buy())
    assert limited.value.retry_after_s == 0.3
    sent = len(fake.requests)
    for _ in range(5):  # nothing goes out while we are told to wait
        with pytest.raises(RateLimitError, match="not sent"):
            await client.snapshot()
    assert len(fake.requests) == sent
    await asyncio.sleep(0.35)
    with pytest.raises(RateLimitError, match="banned"):
        await client.order(CID, "BTCUSDT")  # the server still answers 418
    assert len(fake.requests) == sent + 1
    assert not fake.orders  # the 429 was never an order


async def test_5xx_after_accept_is_unknown_then_lookup_finds_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.inject("POST", "/api/v3/order", 500, text="Internal error.", after_accept=True)
    with pytest.raises(OutcomeUnknownError, match="HTTP 500"):
        await client.submit(limit_buy())
    assert fake.requests.count(("POST", "/api/v3/order")) == 1  # never resubmitted
    found = await client.order(CID, "BTCUSDT")
    assert found is not None
    assert (found.client_order_id, found.status, found.qty) == (CID, OrderStatus.ACCEPTED, 0.5)


async def test_timeout_after_accept_is_unknown_then_lookup_finds_it(
    fake: FakeBinance, keys: None
) -> None:
    client = VENUE.client({**fake.settings, "request_timeout_s": 0.3})
    await client.start()
    try:
        fake.accept_then_delay_s = 1.0
        with pytest.raises(OutcomeUnknownError, match="may exist"):
            await client.submit(limit_buy())
        fake.accept_then_delay_s = 0.0
        assert (await client.order(CID, "BTCUSDT")) is not None
        assert fake.requests.count(("POST", "/api/v3/order")) == 1
    finally:
        await client.close()


async def test_snapshot_reads_cash_positions_and_open_orders(
    client: BinanceClient, fake: FakeBinance
) -> None:
    await client.submit(limit_buy())
    snapshot = await client.snapshot()
    # the fake's account: USDT 10,000 free + 500 locked; BTC 0.5; no ETH
    assert snapshot.cash == 10_500.0
    assert snapshot.positions == {"BTCUSDT": 0.5, "ETHUSDT": 0.0}
    assert [o.client_order_id for o in snapshot.open_orders] == [CID]


async def test_executions_partial_fills_duplicates_and_disorder_dedupe_exactly(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(limit_buy(qty=0.5, price=95.0))
        fake.duplicate_reports, fake.hold_reports = True, True
        fake.fill(CID, 0.1, 95.0)
        fake.fill(CID, 0.15, 94.0)
        fake.release_reports(reverse=True)  # out of order, each twice
        items = await fills.until(4)
    finally:
        await fills.close()
    unique = {e.trade_id: e for e in items}
    assert len(items) == 4
    assert len(unique) == 2
    assert sorted(e.qty for e in unique.values()) == [0.1, 0.15]
    assert {e.client_order_id for e in items} == {CID}
    # commission 0.1 % in USDT: 0.1×95×0.001 + 0.15×94×0.001 = 0.0236
    assert sum(e.commission for e in unique.values()) == pytest.approx(0.0236)
    state = await client.order(CID, "BTCUSDT")
    assert state is not None
    assert (state.status, state.filled_qty) == (OrderStatus.PARTIALLY_FILLED, 0.25)
    # (0.1×95 + 0.15×94) / 0.25 = 94.4
    assert state.avg_fill_price == pytest.approx(94.4)


async def test_executions_after_a_dropped_user_stream_are_backfilled(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(limit_buy())
        await fake.drop_user_stream()
        fake.fill(CID, 0.2, 95.0)  # nobody is listening: only REST can tell
        items = await fills.until(1)
    finally:
        await fills.close()
    assert fake.subscriptions == 2
    assert [(e.client_order_id, e.qty, e.price) for e in items] == [(CID, 0.2, 95.0)]
    assert ("GET", "/api/v3/myTrades") in fake.requests


async def test_recent_executions_after_a_restart_map_orders_to_client_ids(
    client: BinanceClient, fake: FakeBinance, keys: None
) -> None:
    await client.submit(limit_buy())
    trade = fake.fill(CID, 0.3, 95.0)
    restarted = VENUE.client(fake.settings)  # knows no order ids yet
    await restarted.start()
    try:
        fills = await restarted.recent_executions(0)
    finally:
        await restarted.close()
    assert [(f.trade_id, f.client_order_id, f.qty) for f in fills] == [
        (f"BTCUSDT:{trade['id']}", CID, 0.3)
    ]
    assert ("GET", "/api/v3/allOrders") in fake.requests


async def test_a_plain_live_sequence_as_the_live_broker_drives_it(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """submit → partial fills on the stream → cancel → snapshot."""
    fills = Fills(client)
    try:
        await subscribed(fake)
        state = await client.submit(limit_buy(qty=0.4, price=100.0))
        assert state.status == OrderStatus.ACCEPTED
        fake.fill(CID, 0.1, 100.0)
        fake.fill(CID, 0.1, 100.0)
        items = await fills.until(2)
        await client.cancel(CID, "BTCUSDT")
        snapshot = await client.snapshot()
    finally:
        await fills.close()
    assert sum(e.qty for e in {e.trade_id: e for e in items}.values()) == pytest.approx(0.2)
    assert snapshot.open_orders == []
    assert snapshot.positions["BTCUSDT"] == pytest.approx(0.7)  # 0.5 held + 0.2 bought
    # 10,500 − 0.2 × 100 − 0.02 commission
    assert snapshot.cash == pytest.approx(10_479.98)
    final = await client.order(CID, "BTCUSDT")
    assert final is not None
    assert (final.status, final.filled_qty) == (OrderStatus.CANCELLED, 0.2)


def test_client_without_keys_names_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    with pytest.raises(ConfigError, match="BINANCE_API_SECRET"):
        VENUE.client({"symbols": ["BTCUSDT"]})


async def test_no_secret_in_any_log_line_or_error(
    fake: FakeBinance, keys: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json=True)
    errors: list[BaseException] = []
    client = VENUE.client({**fake.settings, "request_timeout_s": 0.3})
    await client.start()
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(limit_buy())
        fake.fill(CID, 0.1)
        await fills.until(1)
        fake.clock_ahead_ms = 30_000
        await client.snapshot()
        for fault in ("dup", "500", "429"):
            if fault == "500":
                fake.inject("POST", "/api/v3/order", 500, text="oops", after_accept=True)
            fake.statuses = [429] if fault == "429" else []
            fake.retry_after_s = "0"
            try:
                await client.submit(limit_buy())
            except Exception as err:
                errors.append(err)
        fake.api_secret = "another-secret"  # now every signature is refused
        try:
            await client.snapshot()
        except Exception as err:
            errors.append(err)
    finally:
        await fills.close()
        await client.close()
        structlog.reset_defaults()  # the JSON logger holds capsys's stdout, closed after this test
    out = capsys.readouterr().out
    texts = [out, repr(client), repr(client.settings), *(str(e) for e in errors)]
    texts += [repr(e.__cause__) for e in errors if e.__cause__ is not None]
    assert len(errors) == 4
    assert "-1022" in str(errors[-1])
    for text in texts:
        assert API_SECRET not in text
        assert API_KEY not in text
    assert "order_submitted" in out


async def test_instruments_read_exchange_info_for_the_symbols_asked(
    client: BinanceClient, fake: FakeBinance
) -> None:
    rules = await client.instruments(["BTCUSDT", "ETHUSDT"])
    assert sorted(rules) == ["BTCUSDT", "ETHUSDT"]
    assert (rules["ETHUSDT"].qty_step, rules["ETHUSDT"].min_notional) == (
        Decimal("0.0001"),
        Decimal("5"),
    )
    with pytest.raises(ConfigError, match=r"DOGEUSDT.*-1121.*Fix"):  # the venue answers -1121
        await client.instruments(["DOGEUSDT"])


async def test_submit_float_noise_goes_out_as_the_exact_decimal(
    client: BinanceClient, fake: FakeBinance
) -> None:
    state = await client.submit(limit_buy(qty=0.1 + 0.2))  # 0.30000000000000004
    assert state.qty == 0.3
    assert fake.orders[("BTCUSDT", CID)]["origQty"] == "0.30000000"


async def test_market_order_of_nine_decimals_is_sent_on_the_step(
    client: BinanceClient, fake: FakeBinance
) -> None:
    order = VenueOrder(CID, "BTCUSDT", Side.BUY, 0.123456789, OrderType.MARKET)
    state = await client.submit(order)
    # the fake fills MARKET orders at 100.0; 0.123456789 went out as 0.12345 (step 0.00001)
    assert (state.status, state.filled_qty) == (OrderStatus.FILLED, 0.12345)
    assert client.dust["BTCUSDT"] == Decimal("0.000006789")


async def test_market_order_that_partly_fills_then_expires_is_reported(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.exchange.market_liquidity = Decimal("0.1")  # the book runs out after 0.1 BTC
    fills = Fills(client)
    try:
        await subscribed(fake)
        state = await client.submit(VenueOrder(CID, "BTCUSDT", Side.BUY, 0.25, OrderType.MARKET))
        items = await fills.until(1)
        async with asyncio.timeout(5):
            while CID not in client.closed_at_venue:  # noqa: ASYNC110 (a probe)
                await asyncio.sleep(0.01)
    finally:
        await fills.close()
    assert (state.status, state.filled_qty) == (OrderStatus.EXPIRED, 0.1)
    assert [(e.qty, e.order_done) for e in items] == [(0.1, False)]
    assert client.closed_at_venue[CID] == OrderStatus.EXPIRED


async def test_fee_paid_in_bnb_is_booked_at_its_ticker_value_and_named_in_kind(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.exchange.fee_asset = "BNB"
    fake.balances = {"USDT": [10_000.0], "BNB": [1.0]}
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(VenueOrder(CID, "BTCUSDT", Side.BUY, 0.25, OrderType.MARKET))
        items = await fills.until(1)
        snapshot = await client.snapshot()
    finally:
        await fills.close()
    # 0.25 BTC × 100 = 25 USDT; fee 25 × 0.075 % = 0.01875 USDT, paid as 0.01875 / 600 BNB:
    # booked at its value, with what was really paid (tradeloop.venue's fee rule)
    assert [(e.qty, e.commission, e.commission_asset, e.commission_paid) for e in items] == [
        (0.25, pytest.approx(0.01875), "BNB", pytest.approx(0.00003125))
    ]
    assert client.fees_in_other_assets == {"BNB": pytest.approx(0.00003125)}
    assert client.fees_in_other_assets_value == pytest.approx(0.01875)
    # the venue's USDT paid the 25 only: the fee left the BNB balance
    assert snapshot.cash == 10_000 - 25
    assert fake.exchange.total("BNB") == Decimal("1") - Decimal("0.00003125")
    assert ("GET", "/api/v3/ticker/price") in fake.requests


async def test_fee_paid_in_bnb_through_the_live_broker_reconciles_with_no_difference(
    client: BinanceClient, fake: FakeBinance
) -> None:
    """The real LiveBroker books the BNB fee as a cost (cash 10,000 − 25 − 0.01875, worked
    by hand as above) and reconciliation adds its value back before comparing with the
    venue's USDT (10,000 − 25): no difference, no adjustment, the gate stays normal."""
    fake.exchange.fee_asset = "BNB"
    fake.balances = {"USDT": [10_000.0], "BNB": [1.0]}
    broker = LiveBroker(client, 10_000.0, fractional=True, client_id=lambda order: CID)
    broker.marks["BTCUSDT"] = 100.0
    await broker.load_instruments(["BTCUSDT"])
    broker.submit("BTCUSDT", Side.BUY, 0.25)
    await broker.send()
    gate = PreTradeGate()
    gate.bind(broker)
    log = structlog.get_logger()
    with capture_logs() as logs:
        found = await reconcile(broker, gate, on_mismatch="halt", since_ns=0, log=log)
    assert found == []
    assert [x["event"] for x in logs if x["event"].startswith("reconcil")] == ["reconciled"]
    assert gate.mode is GateMode.NORMAL
    assert broker.position("BTCUSDT") == 0.25
    assert broker.cash == pytest.approx(10_000 - 25 - 0.01875)
    assert broker.ledger.fees_elsewhere == {
        "BNB": [pytest.approx(0.00003125), pytest.approx(0.01875)]
    }
    assert broker.cash + broker.ledger.elsewhere_value() == pytest.approx(
        float(fake.exchange.total("USDT")), abs=1e-9
    )


async def test_fee_reduced_position_closes_and_the_dust_is_the_venues_too(
    client: BinanceClient, fake: FakeBinance
) -> None:
    fake.exchange.fee_asset, fake.exchange.fee_rate = "received", Decimal("0.00075")
    fake.balances = {"USDT": [10_000.0]}
    fills = Fills(client)
    try:
        await subscribed(fake)
        await client.submit(VenueOrder(CID, "BTCUSDT", Side.BUY, 0.1, OrderType.MARKET))
        bought = (await fills.until(1))[0]
        # 0.1 BTC − 0.075 % taken in BTC = 0.099925 held: not on the 0.00001 step
        assert bought.qty == pytest.approx(0.099925)
        sell = VenueOrder("tl-close", "BTCUSDT", Side.SELL, bought.qty, OrderType.MARKET)
        state = await client.submit(sell)
        snapshot = await client.snapshot()
    finally:
        await fills.close()
    assert (state.status, state.filled_qty) == (OrderStatus.FILLED, 0.09992)
    assert client.dust["BTCUSDT"] == Decimal("0.000005")
    assert fake.exchange.total("BTC") == Decimal("0.000005")
    assert snapshot.positions["BTCUSDT"] == pytest.approx(0.000005)  # the book keeps it too
    with pytest.raises(
        OrderRejectedError, match=r"instrument qty_step: .*rounds to 0 at 0\.00001$"
    ):
        await client.submit(VenueOrder("tl-dust", "BTCUSDT", Side.SELL, 0.000005, OrderType.MARKET))


async def test_lookup_with_negative_cummulative_quote_qty_has_no_average(
    client: BinanceClient, fake: FakeBinance
) -> None:
    await client.submit(limit_buy())
    fake.fill(CID, 0.5, 95.0)
    fake.orders[("BTCUSDT", CID)]["cummulativeQuoteQty"] = "-1.00000000"  # archived data
    state = await client.order(CID, "BTCUSDT")
    assert state is not None
    assert (state.status, state.filled_qty, state.avg_fill_price) == (OrderStatus.FILLED, 0.5, 0.0)
