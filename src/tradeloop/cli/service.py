"""`tradeloop paper`, `tradeloop live` and `tradeloop kill`: the daemon and its switch.

Exit codes of the daemon commands, chosen so a restart policy never loops on a run that a
restart cannot fix (the shipped systemd unit lists them in ``RestartPreventExitStatus``):

    0   stopped: SIGTERM/SIGINT, or the stream ended
    1   crashed (an unexpected error): a restart may help
    70  the strategy raised (EX_SOFTWARE): fix it, then start again; the run resumes at the
        bar that failed (it was never committed)
    78  refused to start (EX_CONFIG): the config, or a state_dir that cannot be trusted
        (locked, damaged, rolled back, another run's); the message says how to recover
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError, StateError, StrategyError, TradeloopError

__all__ = ["EXIT_REFUSED", "EXIT_STRATEGY", "add", "daemon_exit_code"]

EXIT_STRATEGY = 70
EXIT_REFUSED = 78


def add(commands: Any) -> None:
    for name, text in (
        ("paper", "run the paper-trading daemon from a TOML config"),
        ("live", "run against a live venue (needs --confirm-live)"),
    ):
        daemon = commands.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}. The config format is documented in "
            "tradeloop/config.py, deploy/paper.toml and deploy/live-binance.toml; "
            "TRADELOOP_<SECTION>_<KEY> environment variables override it, and venue keys come "
            "only from the environment. Every order passes the [risk] gate; 'tradeloop kill' "
            "halts it. Live mode reconciles with the venue before the strategy starts. Logs are "
            "JSON lines on stdout; /healthz, /readyz and /metrics are served on the [health] "
            "port. SIGTERM finishes the bar in hand, writes the state and exits 0.",
        )
        daemon.add_argument("--config", required=True, type=Path, metavar="PATH")
        daemon.add_argument(
            "--confirm-live", action="store_true", help='required when run.mode is "live"'
        )
        daemon.add_argument(
            "--fresh",
            action="store_true",
            help="begin a new run: move the state_dir's earlier run to state_dir/archive/",
        )
        daemon.add_argument(
            "--restored",
            action="store_true",
            help="the journal was put back from a backup on purpose: resume from its last "
            "bar even though the run had committed more",
        )
        daemon.set_defaults(handler=run_daemon_command, daemon=name, exit_code_of=daemon_exit_code)

    kill = commands.add_parser(
        "kill",
        help="halt a paper/live daemon's trading (or set reduce-only, or resume)",
        description=(
            "The kill switch. Writes the mode into the daemon's state_dir/control.json; the "
            "running daemon applies it within half a second, and a restarted one at start.\n\n"
            "  halted       cancel every working order and refuse every new one (default)\n"
            "  reduce-only  cancel working orders that add exposure; only reducing orders pass\n"
            "  resume       back to normal trading (overrides a daily-loss stop for the day)\n\n"
            "Protective exits of a RiskManager still close positions in every mode. "
            "SIGUSR1 to the daemon is the same as 'tradeloop kill'.\n\n"
            "Example: tradeloop kill --config deploy/paper.toml --reason 'model drift'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kill.add_argument("--config", required=True, type=Path, metavar="PATH")
    mode = kill.add_mutually_exclusive_group()
    mode.add_argument("--reduce-only", action="store_true", help="reduce-only instead of halt")
    mode.add_argument("--resume", action="store_true", help="clear the kill: trade normally")
    kill.add_argument("--reason", default="tradeloop kill", help="recorded in logs and state")
    kill.set_defaults(handler=run_kill)


def run_daemon_command(args: argparse.Namespace) -> int:
    import asyncio

    from tradeloop.config import load_config
    from tradeloop.logs import configure_logging
    from tradeloop.service.daemon import run_daemon

    configure_logging()
    try:
        config = load_config(args.config)
        if args.daemon == "paper" and config.mode != "paper":
            raise ConfigError(f"{args.config}: run.mode is {config.mode!r}; use 'tradeloop live'")
        if args.daemon == "live" and config.mode != "live":
            raise ConfigError(f"{args.config}: run.mode is {config.mode!r}; use 'tradeloop paper'")
        return asyncio.run(
            run_daemon(
                config, confirm_live=args.confirm_live, fresh=args.fresh, restored=args.restored
            )
        )
    except TradeloopError as err:  # one JSON line for the log pipeline; main prints it too
        import structlog

        structlog.get_logger().error(
            "daemon_error",
            error=type(err).__name__,
            message=str(err),
            exit_code=daemon_exit_code(err),
            config=str(args.config),
        )
        raise


def daemon_exit_code(err: TradeloopError) -> int:
    """The exit code of a daemon command that ended with ``err`` (see the module's table)."""
    if isinstance(err, StrategyError):
        return EXIT_STRATEGY
    if isinstance(err, ConfigError | StateError):
        return EXIT_REFUSED
    return 1


def run_kill(args: argparse.Namespace) -> int:
    from tradeloop.config import load_config
    from tradeloop.service.control import write_control

    config = load_config(args.config)
    mode = "normal" if args.resume else "reduce_only" if args.reduce_only else "halted"
    path = write_control(config.state_dir, mode, args.reason)
    print(f"tradeloop: {mode} ({args.reason}) written to {path}; applied within 0.5 s")
    return 0
