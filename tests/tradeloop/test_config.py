"""Daemon config: defaults, env overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloop import ConfigError
from tradeloop.config import parse_config

BASE = {"run": {"strategy": "m:S"}, "feed": {"url": "ws://127.0.0.1:1"}}


def test_defaults_fill_what_the_file_leaves_out() -> None:
    config = parse_config(BASE, {}, "cfg")
    assert (config.mode, config.health_port) == ("paper", 8080)
    assert config.state_dir == Path("state")
    # costs left out are the setup's (else 100,000 cash and no costs): None says "not given"
    assert (config.initial_cash, config.commission, config.slippage) == (None, None, None)
    assert (dict(config.params), config.context) == ({}, None)


def test_params_and_context_are_read_from_the_file_and_the_environment() -> None:
    raw = {
        "run": {"strategy": "m:S", "params": {"entry": 0.7, "name": "x"}},
        "feed": {"url": "ws://127.0.0.1:1", "context": ["VIX", "regime"]},
    }
    config = parse_config(raw, {}, "cfg")
    assert (dict(config.params), config.context) == ({"entry": 0.7, "name": "x"}, ("VIX", "regime"))
    env = {"TRADELOOP_RUN_PARAMS": '{"entry": 0.6}', "TRADELOOP_FEED_CONTEXT": "VIX"}
    config = parse_config(raw, env, "cfg")
    assert (dict(config.params), config.context) == ({"entry": 0.6}, ("VIX",))
    with pytest.raises(ConfigError, match="should be a JSON object"):
        parse_config(raw, {"TRADELOOP_RUN_PARAMS": "entry=0.6"}, "cfg")
    with pytest.raises(ConfigError, match=r"run\.params = 3 should be a table"):
        parse_config({**raw, "run": {"strategy": "m:S", "params": 3}}, {}, "cfg")


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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADELOOP_BROKER_COMISSION": "0.001"}, r"\[broker\] has no key 'comission'.*COMMISSION"),
        ({"TRADELOOP_BROKR_COMMISSION": "0.001"}, "unknown section BROKR.*TRADELOOP_BROKER_"),
        ({"TRADELOOP_VENUE_REST_URL": "http://x"}, r"\[venue\] has no key 'rest_url'"),
        ({"TRADELOOP_RUN_STATE_DIR": ""}, "run.state_dir is empty"),
        ({"TRADELOOP_RUN_STATE_DIR": "  "}, "run.state_dir is empty"),
        ({"TRADELOOP_FEED_STALE_AFTER_S": "0"}, r"feed.stale_after_s = 0.0 must be > 0"),
        ({"TRADELOOP_FEED_URL": "ws://[::1:8765"}, "cannot be parsed"),
        ({"TRADELOOP_FEED_URL": "ws://127.0.0.1:99999"}, "cannot be parsed"),
        ({"TRADELOOP_FEED_URL": "ws://:8765"}, "names no host"),
        ({"TRADELOOP_FEED_URL": "127.0.0.1:8765"}, "must start with ws://"),
    ],
)
def test_environment_typos_and_unusable_values_are_config_errors(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(BASE, env, "cfg")


def test_environment_names_that_are_not_config_keys_are_left_alone() -> None:
    env = {"TRADELOOP_EXAMPLES_DIR": "/tmp", "TRADELOOP_PARITY_LOG": "x", "PATH": "/bin"}
    assert parse_config(BASE, env, "cfg").state_dir == Path("state")


def test_venue_supervision_and_instrument_keys_are_read_and_typed() -> None:
    raw = {
        **BASE,
        "venue": {"cash_tolerance": 0.05, "unknown_deadline_s": 30, "symbols": ["BTCUSDT"]},
        "supervision": {"restore_deadline_s": 20, "on_task_lost": "reduce_only"},
        "risk": {"halt_cancels_protective": True},
        "instruments": {"BTCUSDT": {"qty_step": "0.00001", "tick_size": "0.01"}},
    }
    config = parse_config(raw, {"TRADELOOP_SUPERVISION_MAX_BACKOFF_S": "5"}, "cfg")
    assert (config.cash_tolerance, config.qty_tolerance) == (0.05, 1e-9)
    assert config.unknown_deadline_s == 30.0
    assert config.venue_settings == {"symbols": ["BTCUSDT"]}  # the core's keys stay out
    assert config.supervision.restore_deadline_s == 20.0
    assert config.supervision.max_backoff_s == 5.0
    assert config.supervision.on_task_lost == "reduce_only"
    assert config.risk.halt_cancels_protective is True
    assert str(config.instruments["BTCUSDT"].qty_step) == "0.00001"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**BASE, "run": {"strategy": "m:S", "state_dir": ""}}, "run.state_dir is empty"),
        ({**BASE, "feed": {"url": "ws://x:1", "stale_after_s": 0}}, "must be > 0"),
        ({**BASE, "feed": {"url": "ws://x:1", "stale_after_s": -1}}, "must be > 0"),
        ({**BASE, "health": {"max_lag_s": 0}}, r"health.max_lag_s = 0 must be > 0"),
        ({**BASE, "supervision": {"on_task_lost": "panic"}}, "supervision.on_task_lost must be"),
        ({**BASE, "supervision": {"restart_s": 1}}, "unknown key supervision.restart_s"),
        ({**BASE, "venue": {"cash_tolerance": -1}}, "venue.cash_tolerance must be a number >= 0"),
        ({**BASE, "instruments": {"BTC": {"qty_stp": "1"}}}, "unknown key instruments.BTC.qty_stp"),
        ({**BASE, "instruments": {"BTC": 3}}, r"\[instruments.BTC\] must be a table"),
    ],
)
def test_unusable_values_in_the_file_are_config_errors(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, {}, "cfg")


def test_broker_fill_rules_are_read_and_the_setups_are_the_defaults() -> None:
    from tradeloop import Margin, Setup, Strategy
    from tradeloop.service.header import paper_costs

    raw = {
        **BASE,
        "broker": {
            "cash_shortfall": "reject",
            "calendar": {"AAPL": "XNYS", "BTC": "24/7"},
            "margin": {"initial": 1.0, "maintenance": 0.5, "borrow_rate": 0.02},
        },
    }
    config = parse_config(raw, {}, "cfg")
    assert (config.cash_shortfall, dict(config.calendar or {})) == (
        "reject",
        {"AAPL": "XNYS", "BTC": "24/7"},
    )
    assert config.margin == Margin(initial=1.0, maintenance=0.5, borrow_rate=0.02)
    setup = Setup(Strategy, cash_shortfall="partial", calendar="XLON")
    costs = paper_costs(config, setup)
    assert (costs["cash_shortfall"], costs["calendar"]) == ("reject", config.calendar)
    assert costs["margin"] == config.margin
    left_out = paper_costs(parse_config(BASE, {}, "cfg"), setup)  # the setup's values
    assert (left_out["cash_shortfall"], left_out["calendar"]) == ("partial", "XLON")
    assert "margin" not in left_out  # the broker's default (Reg-T, with shorting)
    assert parse_config({**BASE, "broker": {"margin": False}}, {}, "cfg").margin is False


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ({"margin": {"initial": 0.5, "maint": 0.3}}, r"broker\.margin = .*unknown key"),
        ({"margin": {"initial": 0.2, "maintenance": 0.3}}, r"broker\.margin: margin needs"),
        ({"margin": "yes"}, r"broker\.margin = 'yes' should be true or false or a table"),
        ({"calendar": 3}, r"broker\.calendar = 3 should be a string or a table"),
    ],
)
def test_unusable_broker_fill_rules_are_config_errors(broker: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, "broker": broker}, {}, "cfg")
