"""Settings: strict parsing, secrets only from the environment and never in a repr."""

from __future__ import annotations

import pytest

import adapters.binance
from adapters.binance import VENUE, BinanceSettings
from tradeloop.errors import ConfigError
from tradeloop.venue import load_venue

ENV = {"BINANCE_API_KEY": "k3y-value", "BINANCE_API_SECRET": "s3cret-value"}


def test_defaults_point_at_the_testnet_and_secrets_come_from_env() -> None:
    settings = BinanceSettings.from_mapping({"venue": "binance", "symbols": ["BTCUSDT"]}, ENV)
    assert settings.rest_url == "https://testnet.binance.vision"
    assert settings.ws_api_url == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    assert (settings.interval_ms, settings.recv_window_ms) == (60_000, 5000)
    assert settings.require_credentials() == ("k3y-value", "s3cret-value")
    assert "k3y-value" not in repr(settings)
    assert "s3cret-value" not in repr(settings)


def test_env_variable_names_are_configurable() -> None:
    env = {"MY_KEY": "a", "MY_SECRET": "b"}
    table = {"symbols": ["ETHUSDT"], "api_key_env": "MY_KEY", "api_secret_env": "MY_SECRET"}
    assert BinanceSettings.from_mapping(table, env).require_credentials() == ("a", "b")


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"symbols": ["BTCUSDT"], "api_secret": "x"}, "api_secret"),
        ({"symbols": ["BTCUSDT"], "intervall": "1m"}, "intervall"),
        ({"symbols": []}, "symbols"),
        ({"symbols": ["btc-usdt"]}, "symbols"),
        ({"symbols": ["BTCEUR"]}, "quote_asset USDT"),
        ({"symbols": ["BTCUSDT"], "interval": "7m"}, "interval"),
        ({"symbols": ["BTCUSDT"], "recv_window_ms": 90_000}, "recv_window_ms"),
        ({"symbols": ["BTCUSDT"], "rest_url": "localhost"}, "rest_url"),
    ],
)
def test_bad_tables_name_the_key(table: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        BinanceSettings.from_mapping(table, ENV)


def test_missing_secret_names_the_variable() -> None:
    settings = BinanceSettings.from_mapping({"symbols": ["BTCUSDT"]}, {"BINANCE_API_KEY": "k"})
    with pytest.raises(ConfigError, match="BINANCE_API_SECRET"):
        settings.require_credentials()


def test_the_entry_point_finds_this_adapter() -> None:
    assert load_venue("binance") is VENUE
    assert VENUE.name == "binance"


def test_public_names_are_pinned() -> None:
    assert adapters.binance.__all__ == [
        "VENUE",
        "BinanceClient",
        "BinanceFeed",
        "BinanceSettings",
        "BinanceVenue",
    ]
