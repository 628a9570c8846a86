"""Secrets never reach a log line."""

from __future__ import annotations

import json

import structlog

from tradeloop.logs import configure_logging, redact_secrets


def test_redact_secrets_blanks_secret_looking_keys_only() -> None:
    event = {
        "event": "order_submitted",
        "api_key": "abc",
        "BINANCE_API_SECRET": "s3",
        "signature": "deadbeef",
        "client_order_id": "tl-1",
        "qty": 5,
    }
    out = redact_secrets(None, "info", dict(event))
    assert out["api_key"] == out["BINANCE_API_SECRET"] == out["signature"] == "***"
    assert (out["client_order_id"], out["qty"]) == ("tl-1", 5)


def test_json_logs_carry_bound_context_and_redact(capsys: object) -> None:
    configure_logging(json=True)
    structlog.get_logger().bind(run_id="r1").info("connected", token="t0k3n", venue="x")
    line = capsys.readouterr().out.strip()  # type: ignore[attr-defined]
    record = json.loads(line)
    assert record["event"] == "connected"
    assert record["run_id"] == "r1"
    assert record["token"] == "***"
    assert "t0k3n" not in line
