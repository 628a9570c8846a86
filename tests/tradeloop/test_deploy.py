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
from typing import Any

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


def _unit(name: str = "tradeloop-paper.service") -> dict[str, list[str]]:
    """A systemd unit's ``Key=value`` lines (a key may repeat, as Environment= does)."""
    keys: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def _compose() -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text()))


def test_compose_publishes_health_on_loopback_and_each_service_checks_its_own_port() -> None:
    services = _compose()["services"]
    assert services["paper"]["ports"] == ["127.0.0.1:8080:8080"]  # equity and cash: local
    replay_check = " ".join(services["replay"]["healthcheck"]["test"])
    assert "8765" in replay_check  # not the image's /healthz on 8080, which it does not serve
    assert services["paper"]["depends_on"]["replay"]["condition"] == "service_healthy"


def test_dockerignore_keeps_the_virtualenv_and_the_state_out_of_the_build_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "state", "*.sqlite"} <= ignored
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    }
    assert not copied & ignored  # nothing the image copies is ignored


def test_systemd_unit_owns_a_private_state_directory() -> None:
    unit = _unit()
    assert unit["StateDirectory"] == ["tradeloop"]
    assert unit["StateDirectoryMode"] == ["0700"]
    assert unit["UMask"] == ["0077"]
    state_dir = next(v for v in unit["Environment"] if v.startswith("TRADELOOP_RUN_STATE_DIR="))
    assert state_dir.split("=", 1)[1].startswith("/var/lib/tradeloop/")  # inside it


# what each shipped policy does with an exit (systemd.service(5), "Restart=": on-failure
# restarts a non-zero exit and an unclean signal, RestartPreventExitStatus= excepted;
# compose's on-failure[:max-retries] restarts a non-zero exit, at most max-retries times)
def _systemd_restarts(returncode: int) -> bool:
    unit = _unit()
    assert unit["Restart"] == ["on-failure"]
    prevented = {int(code) for code in unit["RestartPreventExitStatus"][0].split()}
    if returncode < 0:  # killed by a signal: SIGTERM, SIGINT, SIGHUP, SIGPIPE are clean
        return -returncode not in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE)
    return returncode != 0 and returncode not in prevented


def _compose_restarts(returncode: int) -> int:
    """How many times compose starts it again after this exit."""
    policy = _compose()["services"]["paper"]["restart"]
    assert policy.startswith("on-failure:")
    return int(policy.split(":")[1]) if returncode != 0 else 0


def test_shipped_restart_policies_restart_a_crash_and_never_loop(tmp_path: Path) -> None:
    from tests.tradeloop.service.daemons import daemon, serving_replay, write_config
    from tradeloop.service.failure import EXIT_REFUSED, EXIT_STRATEGY

    (tmp_path / "raises.py").write_text(
        "from tradeloop import Strategy\n"
        "class Raises(Strategy):\n"
        "    def on_timestamp_batch(self, batch, context):\n"
        "        raise ValueError('a bug in the strategy')\n"
    )
    exits = {}
    for name in ("ended", "raised", "refused", "killed"):
        (tmp_path / name).mkdir()
    with serving_replay(0.0) as url:
        ended = daemon(write_config(tmp_path / "ended", url))  # the stream ends: exit 0
        raised = daemon(
            write_config(tmp_path / "raised", url, run__strategy=f'"{tmp_path}/raises.py:Raises"')
        )
        refused = daemon(write_config(tmp_path / "refused", "http://not-a-feed"))
        killed = daemon(write_config(tmp_path / "killed", url))
        killed.stdout.readline()  # type: ignore[union-attr]  # it is up
        killed.kill()
        for name, proc in (
            ("ended", ended),
            ("raised", raised),
            ("refused", refused),
            ("killed", killed),
        ):
            proc.communicate(timeout=180)
            exits[name] = proc.returncode
    assert exits == {
        "ended": 0,
        "raised": EXIT_STRATEGY,
        "refused": EXIT_REFUSED,
        "killed": -signal.SIGKILL,
    }
    assert [_systemd_restarts(exits[n]) for n in exits] == [False, False, False, True]
    assert _compose_restarts(exits["ended"]) == 0  # the end of a stream is not a loop
    assert 0 < _compose_restarts(exits["raised"]) <= 3  # bounded, and each retry refuses early
