"""The daemon's configuration: a TOML file, overridden by TRADELOOP_* environment variables.

Pure validation: a dict in, a frozen ``DaemonConfig`` out, or a ``ConfigError`` that names
the key and what it accepts. Unknown keys are errors (a typo must not silently fall back to a
default), in the file and in the environment alike: ``TRADELOOP_<SECTION>_<KEY>`` naming a
section (or something close to one) with a key it does not have is refused. Secrets never
live in the file: they come from the environment.

    [run]
    mode = "paper"                                  # "paper" or "live"
    strategy = "examples/ml_strategy.py:MLStrategy" # a Strategy class, or a tradeloop.Setup
                                                    # (module:name or file.py:name)
    params = { entry = 0.7 }                        # optional: strategy parameters (over
                                                    # the setup's own)
    features = "models.py:provider"                 # optional: a FeatureProvider (or a
                                                    # function making one) for live features;
                                                    # default: the setup's
    state_dir = "/data"

    [feed]
    url = "ws://127.0.0.1:8765"
    stale_after_s = 30.0                            # no message this long: reconnect
    context = ["VIX"]                               # the context the strategy expects (None
                                                    # until its first value); default: the
                                                    # setup's context names; other names on
                                                    # the feed are counted and dropped
    universe = ["AAPL", "MSFT"]                     # optional: the only assets traded (bars
                                                    # of others are counted and dropped)
    max_future_s = 300.0                            # a bar stamped later than this after the
                                                    # wall clock is refused (never advances
                                                    # the run's clock)
    max_assets = 10000                              # no universe: distinct assets let in
    max_context_names = 1000                        # no context names: distinct names let in

    [broker]                                        # each key: default the setup's, else
    initial_cash = 100000.0                         # 100000 / 0 / 0
    commission = 0.0005
    slippage = 0.0
    cash_shortfall = "partial"                      # or "reject" (the whole order); paper
    calendar = "XNYS"                               # DAY orders' sessions (or a table per
                                                    # asset, "24/7" for crypto); paper
    margin = {initial = 0.5, maintenance = 0.3, borrow_rate = 0.02}   # shorts (paper);
                                                    # false: unchecked; default Reg-T, no fee

    [health]
    host = "127.0.0.1"
    port = 8080
    max_lag_s = 3600.0                              # optional: /readyz 503 when the run is
                                                    # this much bar time behind its feed

    [risk]                                          # the pre-trade gate; every key optional
    max_order_qty = 1000                            # see tradeloop.risk.gate for all limits
    max_daily_loss = 0.02                           # kill switch: −2 % on the day
    daily_loss_action = "halt"                      # or "reduce_only"
    halt_cancels_protective = false                 # true: a halt cancels protective stops too

    [venue]                                         # live mode; the adapter's keys go here too
    name = "binance"                                # the adapter (tradeloop.venues entry point)
    reconcile_every_s = 60.0                        # compare the book with the venue this often
    on_mismatch = "halt"                            # or "reduce_only": beyond the tolerances
    cash_tolerance = 0.01                           # cash difference adopted and logged
    qty_tolerance = 1e-9                            # position difference adopted and logged
    unknown_deadline_s = 60.0                       # look an unknown order up this long before
                                                    # believing it was never placed
    instruments_refresh_s = 3600.0                  # re-read the venue's instrument rules

    [supervision]                                   # the daemon's long-lived tasks
    base_backoff_s = 0.5                            # first restart delay (doubles, ±50 % jitter)
    max_backoff_s = 30.0                            # longest restart delay
    restore_deadline_s = 60.0                       # a task down this long is lost: /readyz 503
    on_task_lost = "halt"                           # or "reduce_only": the gate, when a task
                                                    # that books money (execution stream,
                                                    # reconcile loop, sender) is lost

    [instruments.BTCUSDT]                           # a venue's rules for one asset: paper
    qty_step = "0.00001"                            # applies them (live: the venue's own,
    min_qty = "0.00001"                             # these where the venue gives none);
    tick_size = "0.01"                              # see tradeloop.broker.instruments
    min_notional = "5"
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeloop.broker.instruments import InstrumentRules, rules_from_table
from tradeloop.broker.margin import Margin
from tradeloop.errors import ConfigError
from tradeloop.risk.gate import GateLimits

__all__ = ["DaemonConfig", "SupervisionSettings", "load_config"]

_NUMBER = (int, float)
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run": {"mode": str, "strategy": str, "state_dir": str, "features": str, "params": dict},
    "feed": {
        "url": str,
        "stale_after_s": _NUMBER,
        "universe": list,
        "context": list,
        "max_future_s": _NUMBER,
        "max_assets": int,
        "max_context_names": int,
    },
    "broker": {
        "initial_cash": _NUMBER,
        "commission": _NUMBER,
        "slippage": _NUMBER,
        "fractional": bool,
        "cash_shortfall": str,
        "calendar": (str, dict),
        "margin": (bool, dict),
    },
    "health": {"host": str, "port": int, "max_lag_s": _NUMBER},
    "risk": {
        "max_order_qty": _NUMBER,
        "max_order_notional": _NUMBER,
        "max_position_qty": _NUMBER,
        "max_position_notional": _NUMBER,
        "max_open_orders": int,
        "max_orders_per_minute": int,
        "price_band": _NUMBER,
        "stale_after_s": _NUMBER,
        "max_bar_age_s": _NUMBER,
        "max_daily_loss": _NUMBER,
        "daily_loss_action": str,
        "reduce_only": bool,
        "halt_cancels_protective": bool,
    },
    # live mode: the adapter's own keys (symbols, URLs, env var names) pass through untouched
    "venue": {
        "name": str,
        "reconcile_every_s": _NUMBER,
        "on_mismatch": str,
        "cash_tolerance": _NUMBER,
        "qty_tolerance": _NUMBER,
        "unknown_deadline_s": _NUMBER,
        "instruments_refresh_s": _NUMBER,
    },
    "supervision": {
        "base_backoff_s": _NUMBER,
        "max_backoff_s": _NUMBER,
        "restore_deadline_s": _NUMBER,
        "on_task_lost": str,
    },
    "instruments": {},  # one table per asset: tradeloop.broker.instruments.rules_from_table
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {"mode": "paper", "state_dir": "state"},
    "feed": {
        "stale_after_s": 30.0,
        "max_future_s": 300.0,
        "max_assets": 10_000,
        "max_context_names": 1_000,
    },
    "health": {"host": "127.0.0.1", "port": 8080},
    "venue": {
        "reconcile_every_s": 60.0,
        "on_mismatch": "halt",
        "cash_tolerance": 0.01,
        "qty_tolerance": 1e-9,
        "unknown_deadline_s": 60.0,
        "instruments_refresh_s": 3600.0,
    },
    "supervision": {
        "base_backoff_s": 0.5,
        "max_backoff_s": 30.0,
        "restore_deadline_s": 60.0,
        "on_task_lost": "halt",
    },
}
_ACTIONS = ("halt", "reduce_only")


@dataclass(frozen=True, slots=True)
class SupervisionSettings:
    """How the daemon's supervisor restarts its tasks (see ``tradeloop.service.tasks``)."""

    base_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    restore_deadline_s: float = 60.0
    on_task_lost: str = "halt"


_REQUIRED = {("run", "strategy")}


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    mode: str
    strategy: str
    state_dir: Path
    feed_url: str
    stale_after_s: float
    initial_cash: float | None  # None: the setup's, else 100,000
    commission: float | None  # None: the setup's, else 0
    slippage: float | None  # None: the setup's, else 0
    health_host: str
    health_port: int
    risk: GateLimits = field(default_factory=GateLimits)
    # the strategy's parameters (over a setup's own)
    params: Mapping[str, Any] = field(default_factory=dict)
    # the context series the strategy expects; None: the setup's context names
    context: tuple[str, ...] | None = None
    fractional: bool = False
    # 'file.py:name': a FeatureProvider, or a function returning one (called with no args)
    features: str | None = None
    venue_name: str | None = None
    venue_settings: Mapping[str, Any] = field(default_factory=dict)
    reconcile_every_s: float = 60.0
    on_mismatch: str = "halt"
    # the feed's assets: a timestamp is complete once each has reported (no waiting for the
    # first bar of the next one)
    universe: tuple[str, ...] | None = None
    # /readyz: the most bar time the run may be behind its feed (None: not checked)
    health_max_lag_s: float | None = None
    # bars stamped further than this after the wall clock are refused (runtime.intake)
    max_future_s: float = 300.0
    # with no universe / no context names declared: how many distinct ones a feed may bring
    max_assets: int = 10_000
    max_context_names: int = 1_000
    cash_tolerance: float = 0.01
    qty_tolerance: float = 1e-9
    unknown_deadline_s: float = 60.0
    instruments_refresh_s: float = 3600.0
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)
    instruments: Mapping[str, InstrumentRules] = field(default_factory=dict)
    # paper: None for each is the setup's, else the broker's default (see [broker] above)
    cash_shortfall: str | None = None
    calendar: str | Mapping[str, str] | None = None
    margin: Margin | bool | None = None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> DaemonConfig:
    """Read ``path``, apply ``TRADELOOP_<SECTION>_<KEY>`` overrides, validate."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return parse_config(raw, env if env is not None else os.environ, str(path))


def parse_config(raw: Mapping[str, Any], env: Mapping[str, str], source: str) -> DaemonConfig:
    merged: dict[str, dict[str, Any]] = {s: dict(_DEFAULTS.get(s, {})) for s in _SCHEMA}
    for section, values in raw.items():
        if section not in _SCHEMA:
            raise ConfigError(
                f"{source}: unknown section [{section}]; sections: {', '.join(_SCHEMA)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in values.items():
            if key not in _SCHEMA[section] and section not in ("venue", "instruments"):
                raise ConfigError(
                    f"{source}: unknown key {section}.{key}; [{section}] takes "
                    f"{', '.join(_SCHEMA[section])}"
                )
            merged[section][key] = value
    for section, key, name in _env_keys(env, source):
        merged[section][key] = _from_env(name, env[name], _SCHEMA[section][key])
    for section, key in _REQUIRED:
        if key not in merged[section]:
            raise ConfigError(f"{source}: missing {section}.{key}")
    for section, keys in _SCHEMA.items():
        for key, kind in keys.items():
            value = merged[section].get(key)
            if value is not None and (
                not isinstance(value, kind) or (isinstance(value, bool) and not _takes_bool(kind))
            ):
                raise ConfigError(
                    f"{source}: {section}.{key} = {value!r} should be {_kind_name(kind)}"
                )
    run, broker, health = merged["run"], merged["broker"], merged["health"]
    if run["mode"] not in ("paper", "live"):
        raise ConfigError(f'{source}: run.mode = {run["mode"]!r}; use "paper" or "live"')
    venue = merged["venue"]
    if run["mode"] == "paper":
        if "url" not in merged["feed"]:
            raise ConfigError(f"{source}: missing feed.url (paper mode streams from it)")
        _check_feed_url(merged["feed"]["url"], source)
    elif "name" not in venue:
        raise ConfigError(f'{source}: live mode needs [venue] name = "binance" (or "alpaca")')
    if not run["state_dir"].strip():
        raise ConfigError(
            f"{source}: run.state_dir is empty (the journal would land in the current "
            'directory). Fix: name a directory, e.g. state_dir = "/var/lib/tradeloop/state"'
        )
    for section, key in (
        ("feed", "stale_after_s"),
        ("feed", "max_future_s"),
        ("feed", "max_assets"),
        ("feed", "max_context_names"),
        ("health", "max_lag_s"),
    ):
        value = merged[section].get(key)
        if value is not None and not value > 0:
            raise ConfigError(
                f"{source}: {section}.{key} = {value!r} must be > 0. Fix: leave it out for the "
                "default"
            )
    if venue["on_mismatch"] not in _ACTIONS:
        raise ConfigError(f'{source}: venue.on_mismatch must be "halt" or "reduce_only"')
    supervision = merged["supervision"]
    if supervision["on_task_lost"] not in _ACTIONS:
        raise ConfigError(f'{source}: supervision.on_task_lost must be "halt" or "reduce_only"')
    for section, key in (
        ("venue", "reconcile_every_s"),
        ("venue", "cash_tolerance"),
        ("venue", "qty_tolerance"),
        ("venue", "unknown_deadline_s"),
        ("venue", "instruments_refresh_s"),
        ("supervision", "base_backoff_s"),
        ("supervision", "max_backoff_s"),
        ("supervision", "restore_deadline_s"),
    ):
        if not merged[section][key] >= 0:
            raise ConfigError(f"{source}: {section}.{key} must be a number >= 0")
    instruments = {}
    for asset_id, table in merged["instruments"].items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [instruments.{asset_id}] must be a table")
        try:
            instruments[asset_id] = rules_from_table(asset_id, table, f"instruments.{asset_id}")
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    if "initial_cash" in broker and not broker["initial_cash"] > 0:
        raise ConfigError(f"{source}: broker.initial_cash must be > 0")
    context = merged["feed"].get("context")
    if context is not None and not all(isinstance(n, str) and n for n in context):
        raise ConfigError(f"{source}: feed.context must be a list of context names")
    if not 0 <= health["port"] < 65536:
        raise ConfigError(f"{source}: health.port must be 0..65535")
    universe = merged["feed"].get("universe")
    if universe is not None and not (universe and all(isinstance(a, str) and a for a in universe)):
        raise ConfigError(f"{source}: feed.universe must be a non-empty list of asset ids")
    try:
        risk = GateLimits(**merged["risk"])
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return DaemonConfig(
        mode=run["mode"],
        strategy=run["strategy"],
        state_dir=Path(run["state_dir"]),
        feed_url=merged["feed"].get("url", ""),
        stale_after_s=float(merged["feed"]["stale_after_s"]),
        initial_cash=_number(broker.get("initial_cash")),
        commission=_number(broker.get("commission")),
        slippage=_number(broker.get("slippage")),
        health_host=health["host"],
        health_port=health["port"],
        risk=risk,
        fractional=bool(broker.get("fractional", False)),
        cash_shortfall=broker.get("cash_shortfall"),
        calendar=broker.get("calendar"),
        margin=_margin(broker.get("margin"), source),
        features=run.get("features"),
        venue_name=venue.get("name"),
        venue_settings={k: v for k, v in venue.items() if k not in _SCHEMA["venue"]},
        reconcile_every_s=float(venue["reconcile_every_s"]),
        on_mismatch=venue["on_mismatch"],
        universe=tuple(universe) if universe is not None else None,
        params=dict(run.get("params", {})),
        context=tuple(context) if context is not None else None,
        health_max_lag_s=_number(health.get("max_lag_s")),
        max_future_s=float(merged["feed"]["max_future_s"]),
        max_assets=merged["feed"]["max_assets"],
        max_context_names=merged["feed"]["max_context_names"],
        cash_tolerance=float(venue["cash_tolerance"]),
        qty_tolerance=float(venue["qty_tolerance"]),
        unknown_deadline_s=float(venue["unknown_deadline_s"]),
        instruments_refresh_s=float(venue["instruments_refresh_s"]),
        supervision=SupervisionSettings(
            base_backoff_s=float(supervision["base_backoff_s"]),
            max_backoff_s=float(supervision["max_backoff_s"]),
            restore_deadline_s=float(supervision["restore_deadline_s"]),
            on_task_lost=supervision["on_task_lost"],
        ),
        instruments=instruments,
    )


def _env_keys(env: Mapping[str, str], source: str) -> list[tuple[str, str, str]]:
    """(section, key, variable) of every ``TRADELOOP_<SECTION>_<KEY>`` override in ``env``.
    A variable naming a section, or something close to one, with a key the section does not
    take is an error, as the same typo in the file is; other TRADELOOP_* names are not ours."""
    found = []
    for name in sorted(env):
        if not name.startswith("TRADELOOP_"):
            continue
        head, _, rest = name.removeprefix("TRADELOOP_").partition("_")
        section = head.lower()
        if section not in _SCHEMA:
            close = difflib.get_close_matches(section, list(_SCHEMA), n=1, cutoff=0.75)
            if close:
                raise ConfigError(
                    f"{name}: unknown section {head} (for {source}); did you mean "
                    f"TRADELOOP_{close[0].upper()}_{rest}?"
                )
            continue
        key = rest.lower()
        if key not in _SCHEMA[section]:
            close = difflib.get_close_matches(key, list(_SCHEMA[section]), n=1)
            hint = f" did you mean TRADELOOP_{head}_{close[0].upper()}?" if close else ""
            raise ConfigError(
                f"{name}: [{section}] has no key {key!r} (for {source});{hint} "
                f"[{section}] takes {', '.join(_SCHEMA[section])}"
            )
        found.append((section, key, name))
    return found


def _check_feed_url(url: str, source: str) -> None:
    """A WebSocket URL that can be connected to: ws:// or wss://, a host, a valid port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as err:
        raise ConfigError(
            f"{source}: feed.url = {url!r} cannot be parsed ({err}). Fix: e.g. "
            '"ws://127.0.0.1:8765"'
        ) from None
    if parts.scheme not in ("ws", "wss"):
        raise ConfigError(f"{source}: feed.url must start with ws:// or wss:// (got {url!r})")
    if not parts.hostname:
        raise ConfigError(
            f'{source}: feed.url = {url!r} names no host. Fix: e.g. "ws://127.0.0.1:8765"'
        )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _from_env(name: str, text: str, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool in kinds:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"{name}={text!r} should be true or false")
        return text.lower() in ("true", "1")
    if list in kinds:
        return [item.strip() for item in text.split(",") if item.strip()]
    if dict in kinds:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(f'{name}={text!r} should be a JSON object, e.g. {{"entry": 0.7}}')
        return value
    try:
        if int in kinds and float not in kinds:
            return int(text)
        if float in kinds:
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} should be {_kind_name(kind)}") from None
    return text


def _takes_bool(kind: type | tuple[type, ...]) -> bool:
    return bool in (kind if isinstance(kind, tuple) else (kind,))


def _margin(value: bool | dict[str, Any] | None, source: str) -> Margin | bool | None:
    """``[broker] margin``: a table of ``Margin`` fields, or true/false (checked or not)."""
    if not isinstance(value, dict):
        return value
    try:
        return Margin(**value)
    except TypeError:
        known = ", ".join(f.name for f in dataclasses.fields(Margin))
        raise ConfigError(
            f"{source}: broker.margin = {value!r}: unknown key. Fix: use {known}"
        ) from None
    except ConfigError as err:
        raise ConfigError(f"{source}: broker.margin: {err}") from None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "list": "a list",
            "dict": "a table",
        }[k.__name__]
        for k in kinds
    )
