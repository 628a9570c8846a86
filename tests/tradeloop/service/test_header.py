"""The journal's header: what a run is, and which differences refuse a restart (pure)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tradeloop import Setup, Strategy
from tradeloop.config import parse_config
from tradeloop.service.header import IDENTITY, differences, run_header

ROOT = Path(__file__).resolve().parents[3]


class Flat(Strategy):
    def __init__(self, entry: float = 0.5) -> None:
        super().__init__()
        self.entry = entry


def config(**sections: dict[str, object]) -> object:
    raw: dict[str, dict[str, object]] = {
        "run": {"strategy": "flat.py:Flat"},
        "feed": {"url": "ws://127.0.0.1:9"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw, {}, "test.toml")


def stored(header: object) -> dict[str, object]:
    return dict(json.loads(header.to_json()))  # type: ignore[attr-defined]


def test_header_of_the_same_run_has_no_differences_and_a_stable_hash() -> None:
    one = run_header(config(), Setup(Flat, commission=5e-4))  # type: ignore[arg-type]
    two = run_header(config(), Setup(Flat, commission=5e-4))  # type: ignore[arg-type]
    assert differences(stored(one), two) == []
    assert one.config_hash == two.config_hash == stored(one)["config_hash"]
    assert one.initial_cash == 100_000.0  # neither the config nor the setup says: the default
    assert one.costs == {"commission": "0.0005"}


@pytest.mark.parametrize(
    ("sections", "setup", "found"),
    [
        (
            {"broker": {"initial_cash": 5e4}},
            Setup(Flat),
            "initial_cash: journal 100000.0, now 50000.0",
        ),
        ({}, Setup(Flat, initial_cash=2e5), "initial_cash: journal 100000.0, now 200000.0"),
        (
            {"run": {"params": {"entry": 0.7}}},
            Setup(Flat),
            'params: journal {}, now {"entry": 0.7}',
        ),
        ({}, Setup(Flat, params={"entry": 0.7}), 'params: journal {}, now {"entry": 0.7}'),
        (
            {"broker": {"commission": 0.001}},
            Setup(Flat),
            'costs: journal {}, now {"commission": "0.001"}',
        ),
        ({"feed": {"universe": ["A"]}}, Setup(Flat), 'universe: journal none, now ["A"]'),
        ({"feed": {"context": ["VIX"]}}, Setup(Flat), 'context: journal none, now ["VIX"]'),
    ],
)
def test_header_names_each_identity_field_that_changed(
    sections: dict[str, dict[str, object]], setup: Setup, found: str
) -> None:
    before = run_header(config(), Setup(Flat))  # type: ignore[arg-type]
    after = run_header(config(**sections), setup)  # type: ignore[arg-type]
    assert differences(stored(before), after) == [found]
    assert before.config_hash != after.config_hash


def test_header_ignores_operational_settings_and_the_strategy_file() -> None:
    before = run_header(config(), Setup(Flat))  # type: ignore[arg-type]
    after = run_header(
        config(
            feed={"url": "ws://127.0.0.1:10", "stale_after_s": 5.0},
            health={"port": 9100},
            risk={"max_order_qty": 10},
        ),  # type: ignore[arg-type]
        Setup(Flat),
    )
    assert differences(stored(before), replace(after, code="edited", spec="moved.py:Flat")) == []


def test_header_of_a_live_run_names_the_venue_and_its_settings() -> None:
    live = config(run={"mode": "live"}, venue={"name": "binance", "rest_url": "http://a"})
    other = config(run={"mode": "live"}, venue={"name": "binance", "rest_url": "http://b"})
    one = run_header(live, Setup(Flat))  # type: ignore[arg-type]
    two = run_header(other, Setup(Flat))  # type: ignore[arg-type]
    assert (one.venue, one.initial_cash, one.costs) == ("binance", None, {})
    assert [d.split(":")[0] for d in differences(stored(one), two)] == ["account"]
    paper = run_header(config(), Setup(Flat))  # type: ignore[arg-type]
    assert [d.split(":")[0] for d in differences(stored(paper), one)] == [
        "mode",
        "venue",
        "account",
        "initial_cash",
    ]
    assert set(IDENTITY) <= set(stored(one))
