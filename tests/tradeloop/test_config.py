"""Daemon config: defaults, env overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloop import ConfigError
from tradeloop.config import parse_config

BASE = {"run": {"strategy": "m:S"}, "feed": {"url": "ws://127.0.0.1:1"}}


def test_defaults_fill_what_the_file_leaves_out() -> None:
    config = parse_config(BASE, {}, "cfg")
    assert (config.mode, config.initial_cash, config.health_port) == ("paper", 100_000.0, 8080)
    assert config.state_dir == Path("state")


def test_environment_overrides_win_and_are_typed() -> None:
    env = {"TRADELOOP_BROKER_COMMISSION": "0.002", "TRADELOOP_HEALTH_PORT": "9000"}
    config = parse_config(BASE, env, "cfg")
    assert (config.commission, config.health_port) == (0.002, 9000)
    with pytest.raises(ConfigError, match="TRADELOOP_HEALTH_PORT='x' should be an integer"):
        parse_config(BASE, {"TRADELOOP_HEALTH_PORT": "x"}, "cfg")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"feed": {"url": "ws://x"}}, "missing run.strategy"),
        ({**BASE, "brokr": {}}, r"unknown section \[brokr\]"),
        ({**BASE, "run": {"strategy": "m:S", "mode": "yolo"}}, 'use "paper" or "live"'),
        ({**BASE, "broker": {"initial_cash": -1}}, "initial_cash must be > 0"),
        ({**BASE, "health": {"port": True}}, "should be an integer"),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, {}, "cfg")
