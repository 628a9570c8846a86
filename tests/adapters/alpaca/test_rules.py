"""Alpaca's instrument rules from the asset (``GET /v2/assets/{symbol}``, recorded payload),
and ``AlpacaClient.instruments`` fetching them from the fake."""

from __future__ import annotations

from decimal import Decimal

import pytest
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV, AlpacaSettings
from adapters.alpaca.rules import EQUITY_PRICE_TICKS, rules_from_asset

from adapters.alpaca import AlpacaClient
from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET, FakeAlpaca, payload
from tradeloop.broker.instruments import InstrumentRules
from tradeloop.errors import ConfigError, OrderRejectedError
from tradeloop.events import OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrder

ENV = {KEY_ID_ENV: KEY_ID, SECRET_ENV: SECRET}


def test_a_fractionable_equity_trades_nine_decimals_as_day_on_the_penny_ticks() -> None:
    assert rules_from_asset(payload("http_get_asset.json")) == InstrumentRules(
        asset_id="AAPL",
        qty_step=Decimal("0.000000001"),
        price_ticks=EQUITY_PRICE_TICKS,
        fractionable=True,
        fractional_tif=TimeInForce.DAY,
    )
    rules = rules_from_asset(payload("http_get_asset.json"))
    assert rules.tick(Decimal("0.9999")) == Decimal("0.0001")  # below $1
    assert rules.tick(Decimal(1)) == Decimal("0.01")  # at $1 and above


def test_a_non_fractionable_equity_trades_whole_shares() -> None:
    rules = rules_from_asset(dict(payload("http_get_asset.json"), fractionable=False))
    assert (rules.qty_step, rules.fractionable) == (Decimal(1), False)


def test_an_asset_with_its_own_increments_keeps_them() -> None:
    crypto = dict(
        payload("http_get_asset.json"),
        symbol="BTC/USD",
        min_trade_increment="0.0001",
        price_increment="1",
        min_order_size="0.0002",
    )
    rules = rules_from_asset(crypto)
    assert (rules.qty_step, rules.min_qty) == (Decimal("0.0001"), Decimal("0.0002"))
    assert rules.price_ticks == ((Decimal(0), Decimal(1)),)


def test_an_untradable_asset_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"AAPL is not tradable.*Fix"):
        rules_from_asset(dict(payload("http_get_asset.json"), tradable=False))


async def test_instruments_come_from_the_venues_assets_and_drive_the_orders(
    fake: FakeAlpaca,
) -> None:
    fake.fractionable["SPY"] = False
    client = AlpacaClient(AlpacaSettings.from_mapping(fake.settings(), ENV))
    await client.start()
    try:
        rules = await client.instruments(["AAPL", "SPY"])
        assert (rules["AAPL"].fractionable, rules["SPY"].fractionable) == (True, False)
        assert fake.requests.count(("GET", "/v2/assets/SPY")) == 1
        fraction = VenueOrder("tl-frac", "SPY", Side.BUY, 0.5, OrderType.MARKET)
        with pytest.raises(
            OrderRejectedError,
            match=r"not sent: .*instrument qty_step: SPY: quantity 0\.5 rounds to 0 at 1$",
        ):
            await client.submit(fraction)
        assert ("POST", "/v2/orders") not in fake.requests  # refused here, unsent
        await client.submit(VenueOrder("tl-frac2", "AAPL", Side.BUY, 0.5, OrderType.MARKET))
        (order,) = fake.orders.values()
        assert (order["qty"], order["time_in_force"]) == ("0.5", "day")  # asked gtc
        assert fake.requests.count(("GET", "/v2/assets/AAPL")) == 1  # cached for the submit
        with pytest.raises(ConfigError, match="no asset 'BOGUS'"):
            await client.instruments(["BOGUS"])
    finally:
        await client.close()
