"""Alpaca settings: the config's ``[venue]`` table, validated, plus the keys from the environment.

Pure: a mapping in, a frozen ``AlpacaSettings`` out, or a ``ConfigError`` naming the key. The
key id and secret come only from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``; they never
appear in ``repr``, logs or error text.

    [venue]
    name = "alpaca"
    symbols = ["AAPL", "SPY"]
    feed = "iex"                      # or "sip" (paid plan)
    trading_url = "https://paper-api.alpaca.markets"   # the default: paper trading
    correction_grace_s = 2.0          # hold each minute this long for "u" corrections
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["KEY_ID_ENV", "SECRET_ENV", "AlpacaSettings"]

KEY_ID_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-/]{0,20}$")
_NUMBER = (int, float)
_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "symbols": list,
    "feed": str,
    "data_ws_url": str,
    "data_url": str,
    "trading_url": str,
    "trade_updates_url": str,
    "auth_timeout_s": _NUMBER,
    "correction_grace_s": _NUMBER,
    "connection_limit_backoff_s": _NUMBER,
    "request_timeout_s": _NUMBER,
    "max_rate_wait_s": _NUMBER,
}


@dataclass(frozen=True, slots=True)
class AlpacaSettings:
    symbols: tuple[str, ...]
    feed: str = "iex"
    data_ws_url: str = "wss://stream.data.alpaca.markets/v2/iex"
    data_url: str = DATA_URL
    trading_url: str = PAPER_TRADING_URL
    trade_updates_url: str = "wss://paper-api.alpaca.markets/stream"
    auth_timeout_s: float = 10.0  # Alpaca closes an unauthenticated socket after ~10 s
    correction_grace_s: float = 2.0
    connection_limit_backoff_s: float = 30.0  # first wait after a 406; doubles to 5 min
    request_timeout_s: float = 10.0
    max_rate_wait_s: float = 5.0  # reads wait out a rate limit this short, else raise
    key_id: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> AlpacaSettings:
        """Validate ``[venue]`` and read the keys from ``env`` (``os.environ`` by default)."""
        env = os.environ if env is None else env
        for key, value in table.items():
            expected = _SCHEMA.get(key)
            if expected is None:
                if key in ("key", "key_id", "secret", "api_key", "secret_key"):
                    raise ConfigError(
                        f"[venue] {key}: keys are never read from the config file; "
                        f"set {KEY_ID_ENV} and {SECRET_ENV} in the environment"
                    )
                raise ConfigError(f"[venue] {key}: unknown setting (known: {', '.join(_SCHEMA)})")
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ConfigError(f"[venue] {key}: expected {_kind(expected)}, got {value!r}")
        if table.get("name", "alpaca") != "alpaca":
            raise ConfigError(f"[venue] name = {table['name']!r}: this is the alpaca adapter")
        symbols = table.get("symbols")
        if not symbols or not all(isinstance(s, str) and _SYMBOL.match(s) for s in symbols):
            raise ConfigError(
                f"[venue] symbols: expected a non-empty list of upper-case tickers such as "
                f'["AAPL", "SPY"], got {symbols!r}'
            )
        if len(set(symbols)) != len(symbols):
            raise ConfigError(f"[venue] symbols: listed twice: {symbols!r}")
        feed = table.get("feed", "iex")
        if feed not in ("iex", "sip"):
            raise ConfigError(f'[venue] feed = {feed!r}: expected "iex" (free) or "sip"')
        for key in ("auth_timeout_s", "connection_limit_backoff_s", "request_timeout_s"):
            if key in table and not table[key] > 0:
                raise ConfigError(f"[venue] {key}: must be > 0, got {table[key]!r}")
        for key in ("correction_grace_s", "max_rate_wait_s"):
            if key in table and not table[key] >= 0:
                raise ConfigError(f"[venue] {key}: must be >= 0, got {table[key]!r}")
        key_id, secret = env.get(KEY_ID_ENV, ""), env.get(SECRET_ENV, "")
        missing = [
            name for name, value in ((KEY_ID_ENV, key_id), (SECRET_ENV, secret)) if not value
        ]
        if missing:
            raise ConfigError(
                f"alpaca: {' and '.join(missing)} not set; export the paper account's API key "
                "id and secret (Alpaca dashboard → API keys) before starting"
            )
        trading_url = str(table.get("trading_url", PAPER_TRADING_URL)).rstrip("/")
        options = {k: float(table[k]) for k in _SCHEMA if k.endswith("_s") and k in table}
        return cls(
            symbols=tuple(symbols),
            feed=feed,
            data_ws_url=table.get("data_ws_url", f"wss://stream.data.alpaca.markets/v2/{feed}"),
            data_url=str(table.get("data_url", DATA_URL)).rstrip("/"),
            trading_url=trading_url,
            trade_updates_url=table.get("trade_updates_url", _stream_url(trading_url)),
            key_id=key_id,
            secret=secret,
            **options,
        )

    @property
    def headers(self) -> dict[str, str]:
        """The REST authentication headers (plain keys: Alpaca does not sign requests)."""
        return {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret}

    def redact(self, text: str) -> str:
        """``text`` with the key id and secret blanked out (for error messages)."""
        for value in (self.secret, self.key_id):
            if value:
                text = text.replace(value, "***")
        return text


def _stream_url(trading_url: str) -> str:
    """The trade_updates socket on the trading host: https://host → wss://host/stream."""
    if trading_url.startswith("https://"):
        return "wss://" + trading_url.removeprefix("https://") + "/stream"
    return "ws://" + trading_url.removeprefix("http://") + "/stream"


def _kind(expected: type | tuple[type, ...]) -> str:
    if expected == _NUMBER:
        return "a number"
    assert isinstance(expected, type)
    return {"str": "a string", "list": "a list"}.get(expected.__name__, expected.__name__)
