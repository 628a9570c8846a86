"""The recorded Alpaca payloads (``payloads/``, full envelopes as the docs show them), the test
account's keys, and the fake market's minute clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["KEY_ID", "MINUTE0", "PAYLOADS", "SECRET", "minute_ns", "minute_text", "payload"]

PAYLOADS = Path(__file__).parent / "payloads"
KEY_ID = "PKTESTKEYID0000000001"
SECRET = "sEcReT-do-not-leak-0123456789abcdefghij"
MINUTE0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def minute_text(i: int) -> str:
    return (MINUTE0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def minute_ns(i: int) -> int:
    return int((MINUTE0 + timedelta(minutes=i)).timestamp()) * 1_000_000_000
