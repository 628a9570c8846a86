"""The recorded Binance payloads beside these tests (``payloads/``), from the docs' examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["PAYLOADS", "payload"]

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> Any:
    """A fresh copy of ``payloads/<name>``."""
    return orjson.loads((PAYLOADS / name).read_bytes())
