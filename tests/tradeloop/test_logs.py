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


def test_redact_removes_url_credentials_and_secret_query_values() -> None:
    from tradeloop.logs import redact

    text = (
        "cannot connect to wss://alice:pa55word@feed.example:443/ws?token=abc123&symbol=BTC"
        "&X-Signature=f00d&api_key=k3y; retrying http://u@h/x?sig=1"
    )
    assert redact(text) == (
        "cannot connect to wss://***@feed.example:443/ws?token=***&symbol=BTC"
        "&X-Signature=***&api_key=***; retrying http://***@h/x?sig=***"
    )
    assert (
        redact("no secrets: ws://127.0.0.1:8765 qty=5") == "no secrets: ws://127.0.0.1:8765 qty=5"
    )


def test_redact_secrets_removes_configured_secrets_by_value_anywhere() -> None:
    from tradeloop.logs import remember_environment, remember_secret

    remember_environment({"BINANCE_API_SECRET": "s3cr3t-v4lue", "HOME": "/home/somebody"})
    remember_secret("hunter2hunter2")
    remember_secret("abc")  # too short to redact safely: ignored
    event = {
        "event": "order_failed",
        "error": "HTTP 401 for key s3cr3t-v4lue",
        "details": {"headers": ["X: hunter2hunter2"], "home": "/home/somebody", "n": 3},
        "traceback": 'File "x.py"\n    sign("s3cr3t-v4lue")',
        "note": "abc",
    }
    out = redact_secrets(None, "error", dict(event))
    assert out["error"] == "HTTP 401 for key ***"
    assert out["details"] == {"headers": ["X: ***"], "home": "/home/somebody", "n": 3}
    assert "s3cr3t-v4lue" not in out["traceback"]
    assert out["note"] == "abc"
