"""Logging, configured in one place: structlog, JSON lines when not on a terminal.

Messages are snake_case event names with key-value details; anything whose key looks like a
secret (key, secret, token, password, signature) is replaced by "***" before it is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "redact_secrets"]

_SECRET_WORDS = ("secret", "token", "password", "api_key", "apikey", "signature", "private_key")


def redact_secrets(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: blank out values under secret-looking keys."""
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "***"
    return event


def configure_logging(*, json: bool | None = None, level: int = logging.INFO) -> None:
    """JSON to stdout when not a TTY (services), readable console output otherwise."""
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
