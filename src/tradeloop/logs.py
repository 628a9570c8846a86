"""Logging, configured in one place: structlog, JSON lines when not on a terminal.

Messages are snake_case event names with key-value details. Secrets are redacted before a
line is written, three ways:

- by key: a value under a secret-looking key (key, secret, token, password, signature)
  becomes "***";
- by value: every configured secret (each environment variable whose name says SECRET, KEY,
  TOKEN, PASSWORD or PASSPHRASE, and each one ``remember_secret`` is told of) is replaced
  wherever it appears, in any string of the event (an error message, a traceback);
- by pattern: URL credentials (``wss://user:pass@host``) and secret query parameters
  (``?token=``, ``&signature=``, ``api_key=``...) keep their names, lose their values.

``redact`` applies the last two to any text (the CLI's error messages pass through it).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = [
    "configure_logging",
    "redact",
    "redact_secrets",
    "remember_environment",
    "remember_secret",
]

_SECRET_WORDS = ("secret", "token", "password", "api_key", "apikey", "signature", "private_key")
_SECRET_ENV = re.compile(r"SECRET|KEY|TOKEN|PASSWORD|PASSPHRASE|CREDENTIAL", re.I)
_MIN_SECRET = 6  # shorter values would blank ordinary words
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@", re.I)
_QUERY = re.compile(
    r"(?P<name>[?&;][\w.-]*(?:token|signature|sig|key|secret|password|passwd|auth)[\w.-]*=)"
    r"[^&#;,\s'\"]+",
    re.I,
)
_MASK = "***"
_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Redact ``value`` wherever it appears in a log line from now on."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


def remember_environment(env: Mapping[str, str] = os.environ) -> None:
    """Every environment variable whose name says it holds a secret (API keys, tokens)."""
    for name, value in env.items():
        if _SECRET_ENV.search(name):
            remember_secret(value)


def redact(text: str) -> str:
    """``text`` without configured secrets, URL credentials or secret query values."""
    for secret in sorted(_secrets, key=len, reverse=True):  # a longer one first: no leftover
        if secret in text:
            text = text.replace(secret, _MASK)
    if "://" in text:
        text = _USERINFO.sub(rf"\g<scheme>{_MASK}@", text)
    if "=" in text:
        text = _QUERY.sub(rf"\g<name>{_MASK}", text)
    return text


def redact_secrets(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: blank out values under secret-looking keys, and redact
    secrets by value and by pattern in every other string of the event."""
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = _MASK
        else:
            event[key] = _scrub(event[key])
    return event


def configure_logging(*, json: bool | None = None, level: int = logging.INFO) -> None:
    """JSON to stdout when not a TTY (services), readable console output otherwise."""
    import structlog

    remember_environment()
    as_json = not sys.stdout.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _MASK if _secret_key(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)
