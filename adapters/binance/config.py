"""Binance settings: the config's ``[venue]`` table, validated once, secrets from the environment.

Frozen and strict: an unknown key, a missing symbol or an API key written into the file is a
``ConfigError`` naming the key. The API key and secret never appear in ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["INTERVAL_MS", "BinanceSettings"]

INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}

_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_SECRETS_IN_FILE = ("api_key", "api_secret", "secret", "key")


@dataclass(frozen=True, slots=True)
class BinanceSettings:
    """Everything the feed and the client need; defaults point at the Binance spot testnet."""

    symbols: tuple[str, ...]
    quote_asset: str = "USDT"
    interval: str = "1m"
    ws_url: str = "wss://stream.testnet.binance.vision"  # + /stream?streams=...
    rest_url: str = "https://testnet.binance.vision"  # + /api/v3/...
    ws_api_url: str = "wss://ws-api.testnet.binance.vision/ws-api/v3"
    recv_window_ms: int = 5000
    request_timeout_s: float = 10.0
    klines_limit: int = 1000  # rows per GET /api/v3/klines page (Binance's maximum)
    max_connection_age_s: float = 23.5 * 3600  # reconnect before Binance's forced 24 h cut
    fee_price_ttl_s: float = 60.0  # how long a fee asset's ticker price (BNB) is reused
    api_key_env: str = "BINANCE_API_KEY"
    api_secret_env: str = "BINANCE_API_SECRET"
    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)

    @property
    def interval_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    def base_asset(self, symbol: str) -> str:
        """``BTCUSDT`` → ``BTC`` (every configured symbol ends with the quote asset)."""
        return symbol[: -len(self.quote_asset)]

    def require_credentials(self) -> tuple[str, str]:
        """The API key and secret, or a ConfigError naming the environment variable to set."""
        pairs = ((self.api_key, self.api_key_env), (self.api_secret, self.api_secret_env))
        for value, env in pairs:
            if not value:
                raise ConfigError(
                    f"[venue] binance: environment variable {env} is empty or unset; "
                    "export it (never write keys into the config file)"
                )
        return self.api_key, self.api_secret

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> BinanceSettings:
        """Validate the ``[venue]`` table; read the secrets from ``env`` (default: os.environ)."""
        env = os.environ if env is None else env
        table = {k: v for k, v in table.items() if k not in ("name", "venue")}
        for key in _SECRETS_IN_FILE:
            if key in table:
                raise ConfigError(
                    f"[venue] {key}: secrets are never read from the config file; "
                    "set the environment variables named by api_key_env / api_secret_env"
                )
        known = {f.name for f in fields(cls)} - {"api_key", "api_secret"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"[venue] {unknown[0]}: unknown Binance setting (known: {sorted(known)})"
            )
        values = dict(table)
        symbols = values.get("symbols")
        if isinstance(symbols, str):
            symbols = [symbols]
        if not isinstance(symbols, list | tuple) or not symbols:
            raise ConfigError('[venue] symbols: give a non-empty list, e.g. ["BTCUSDT"]')
        quote = values.get("quote_asset", "USDT")
        if not isinstance(quote, str) or not quote:
            raise ConfigError('[venue] quote_asset: give the quote asset, e.g. "USDT"')
        for symbol in symbols:
            if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
                raise ConfigError(
                    f"[venue] symbols: {symbol!r} is not a Binance symbol like BTCUSDT"
                )
            if not symbol.endswith(quote) or symbol == quote:
                raise ConfigError(
                    f"[venue] symbols: {symbol} is not quoted in quote_asset {quote}; "
                    "one venue table trades one quote asset"
                )
        values["symbols"] = tuple(symbols)
        interval = values.get("interval", "1m")
        if interval not in INTERVAL_MS:
            raise ConfigError(f"[venue] interval: {interval!r} is not one of {list(INTERVAL_MS)}")
        _check_number(values, "recv_window_ms", 1, 60_000)
        _check_number(values, "request_timeout_s", 0.001, 600)
        _check_number(values, "klines_limit", 1, 1000)
        _check_number(values, "max_connection_age_s", 0.001, 24 * 3600)
        _check_number(values, "fee_price_ttl_s", 0, 86_400)
        for url_key in ("ws_url", "rest_url", "ws_api_url"):
            url = values.get(url_key)
            if url is not None and not (isinstance(url, str) and "://" in url):
                raise ConfigError(f"[venue] {url_key}: {url!r} is not a URL")
            if isinstance(url, str):
                values[url_key] = url.rstrip("/")
        settings = cls(**values)
        return _with_secrets(settings, env)


def _check_number(values: Mapping[str, Any], key: str, low: float, high: float) -> None:
    if key not in values:
        return
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"[venue] {key}: {value!r} is not a number in [{low:g}, {high:g}]")


def _with_secrets(settings: BinanceSettings, env: Mapping[str, str]) -> BinanceSettings:
    key = env.get(settings.api_key_env, "").strip()
    secret = env.get(settings.api_secret_env, "").strip()
    return replace(settings, api_key=key, api_secret=secret)
