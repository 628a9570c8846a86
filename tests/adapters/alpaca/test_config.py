"""The [venue] table: defaults, validation naming the key, keys only from the environment."""

from __future__ import annotations

from typing import Any

import pytest
from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV, AlpacaSettings

from tradeloop.errors import ConfigError

ENV = {KEY_ID_ENV: "PKEXAMPLEKEYID", SECRET_ENV: "example-secret-value-42"}


def test_defaults_are_the_paper_endpoint_and_the_iex_feed() -> None:
    settings = AlpacaSettings.from_mapping({"name": "alpaca", "symbols": ["AAPL", "SPY"]}, ENV)
    assert settings.symbols == ("AAPL", "SPY")
    assert settings.trading_url == "https://paper-api.alpaca.markets"
    assert settings.trade_updates_url == "wss://paper-api.alpaca.markets/stream"
    assert settings.data_ws_url == "wss://stream.data.alpaca.markets/v2/iex"
    assert settings.data_url == "https://data.alpaca.markets"
    assert settings.auth_timeout_s == 10.0
    assert settings.headers == {
        "APCA-API-KEY-ID": "PKEXAMPLEKEYID",
        "APCA-API-SECRET-KEY": "example-secret-value-42",
    }


def test_sip_feed_and_live_endpoint_derive_their_urls() -> None:
    table = {"symbols": ["SPY"], "feed": "sip", "trading_url": "https://api.alpaca.markets/"}
    settings = AlpacaSettings.from_mapping(table, ENV)
    assert settings.data_ws_url == "wss://stream.data.alpaca.markets/v2/sip"
    assert settings.trade_updates_url == "wss://api.alpaca.markets/stream"


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"symbols": []}, "symbols: expected a non-empty list"),
        ({"symbols": ["aapl"]}, "upper-case tickers"),
        ({"symbols": ["SPY", "SPY"]}, "listed twice"),
        ({"symbols": ["SPY"], "feed": "otc"}, 'feed = .otc.: expected "iex"'),
        ({"symbols": ["SPY"], "colour": 1}, "colour: unknown setting"),
        ({"symbols": ["SPY"], "auth_timeout_s": "10"}, "auth_timeout_s: expected a number"),
        ({"symbols": ["SPY"], "auth_timeout_s": 0}, "auth_timeout_s: must be > 0"),
        ({"symbols": ["SPY"], "secret": "x"}, "never read from the config file"),
        ({"symbols": ["SPY"], "name": "binance"}, "this is the alpaca adapter"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AlpacaSettings.from_mapping(table, ENV)


def test_missing_keys_name_both_environment_variables() -> None:
    with pytest.raises(ConfigError, match=f"{KEY_ID_ENV} and {SECRET_ENV} not set"):
        AlpacaSettings.from_mapping({"symbols": ["SPY"]}, {})
    with pytest.raises(ConfigError, match=f"alpaca: {SECRET_ENV} not set"):
        AlpacaSettings.from_mapping({"symbols": ["SPY"]}, {KEY_ID_ENV: "k"})


def test_secrets_stay_out_of_repr_and_are_redacted_from_text() -> None:
    settings = AlpacaSettings.from_mapping({"symbols": ["SPY"]}, ENV)
    assert "example-secret" not in repr(settings)
    assert "PKEXAMPLEKEYID" not in repr(settings)
    assert settings.redact("auth example-secret-value-42 for PKEXAMPLEKEYID") == "auth *** for ***"
