"""The image's entry command, run as a subprocess (no Docker engine here), and the deploy files."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tradeloop.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_entry_command_runs_the_paper_daemon_and_validates_its_config(
    tmp_path: Path,
) -> None:
    text = (ROOT / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT \[(.*)\]$", text, re.M)
    cmd = re.search(r"^CMD \[(.*)\]$", text, re.M)
    assert entry is not None
    assert cmd is not None
    argv = [a.strip().strip('"') for a in f"{entry[1]}, {cmd[1]}".split(",")]
    assert argv[:2] == ["tradeloop", "paper"]
    config_in_image = argv[argv.index("--config") + 1]
    assert config_in_image == "/etc/tradeloop/paper.toml"
    # the image copies deploy/paper.toml there; run the same command against that file,
    # with the image's environment, pointed at a feed that does not exist
    env = {
        **os.environ,
        "TRADELOOP_RUN_STATE_DIR": str(tmp_path / "state"),
        "TRADELOOP_HEALTH_HOST": "127.0.0.1",
        "TRADELOOP_HEALTH_PORT": "0",
        "TRADELOOP_FEED_URL": "ws://127.0.0.1:9",
    }
    command = [sys.executable, "-m", "tradeloop", *argv[1:-1], str(ROOT / "deploy/paper.toml")]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # it starts, logs JSON, and keeps retrying the missing feed
        seen.append(line)
        if '"event": "feed_reconnecting"' in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert any('"event": "daemon_started"' in line for line in seen), shlex.join(command)
    assert '"event": "daemon_stopped"' in out


def test_paper_toml_is_valid_and_env_overrides_it() -> None:
    config = load_config(
        ROOT / "deploy/paper.toml",
        env={"TRADELOOP_FEED_URL": "ws://feed:1", "TRADELOOP_HEALTH_PORT": "9100"},
    )
    assert (config.mode, config.feed_url, config.health_port) == ("paper", "ws://feed:1", 9100)
    assert config.commission is None  # the setup's 0.0005
    assert tomllib.loads((ROOT / "deploy/paper.toml").read_text())["run"]["mode"] == "paper"


def test_env_example_names_secrets_without_values() -> None:
    for line in (ROOT / "deploy/env.example").read_text().splitlines():
        if "=" in line and any(word in line for word in ("SECRET", "KEY")):
            assert line.startswith("#")
            assert line.split("=", 1)[1].strip() == ""


def test_live_binance_toml_is_valid_for_the_core_and_the_adapter() -> None:
    from adapters.binance.config import BinanceSettings

    config = load_config(ROOT / "deploy/live-binance.toml", env={})
    assert config.mode == "live"
    assert config.venue_name == "binance"
    assert config.risk.max_daily_loss == 0.03
    assert config.universe == ("BTCUSDT", "ETHUSDT")
    settings = BinanceSettings.from_mapping(config.venue_settings, env={})
    assert settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.rest_url == "https://testnet.binance.vision"  # never mainnet by default


def test_the_image_copies_every_packaged_folder_and_both_configs() -> None:
    """`pip install .` in the image builds the wheel from what was copied: a package folder
    left out of a COPY line would break the build (or ship without the venue adapters)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = [
        line.split()[1:-1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    ]
    sources = {source for line in copied for source in line}
    for package in packages:
        assert package.split("/")[0] in sources, package
    assert {"deploy/paper.toml", "deploy/live-binance.toml", "deploy/live-alpaca.toml"} <= sources


def test_live_alpaca_toml_is_valid_for_the_core_and_the_adapter() -> None:
    from adapters.alpaca.config import AlpacaSettings

    config = load_config(ROOT / "deploy/live-alpaca.toml", env={})
    assert (config.mode, config.venue_name, config.universe) == ("live", "alpaca", ("SPY", "AAPL"))
    keys = {"APCA_API_KEY_ID": "id", "APCA_API_SECRET_KEY": "secret"}
    settings = AlpacaSettings.from_mapping(config.venue_settings, env=keys)
    assert settings.symbols == ("SPY", "AAPL")
    assert settings.trading_url == "https://paper-api.alpaca.markets"  # never live by default
    assert (config.on_mismatch, config.risk.daily_loss_action) == ("halt", "halt")


@pytest.mark.parametrize("name", ["live-binance.toml", "live-alpaca.toml"])
def test_live_configs_halt_when_a_money_task_is_lost_for_a_minute(name: str) -> None:
    config = load_config(ROOT / "deploy" / name, env={})
    supervision = config.supervision
    assert (supervision.restore_deadline_s, supervision.on_task_lost) == (60.0, "halt")


@pytest.mark.parametrize("name", ["paper.toml", "live-binance.toml", "live-alpaca.toml"])
def test_deploy_config_setup_trades_on_bare_venue_bars(name: str) -> None:
    """Each shipped config names a setup that runs on what a venue sends: bars with no signal
    columns at all (the live-binance config used to die on its first kline: unknown signal
    'ml_pred'). Its model computes the signal from the bar, so it trades."""
    from tradeloop import Engine, ReplayFeed
    from tradeloop.data.synthetic import synthetic_market
    from tradeloop.plugins import load_setup

    config = load_config(ROOT / "deploy" / name, env={})
    cwd = Path.cwd()
    os.chdir(ROOT)  # the configs name files relative to the repository, as the image does
    try:
        setup = load_setup(config.strategy, "run.strategy")
    finally:
        os.chdir(cwd)
    bars, _ = synthetic_market(n_assets=2, n_bars=120, seed=3)
    venue_bars = bars.select("timestamp", "asset_id", "open", "high", "low", "close", "volume")
    result = Engine(ReplayFeed(venue_bars), setup.replace(params={**setup.params})).run()
    assert result.fills.height > 0
    assert result.config["signals"] == ["model_score"]
