"""`tradeloop paper`, `tradeloop live` and `tradeloop kill`: the daemon and its switch.

The daemon commands' exit codes are ``tradeloop.service.failure``'s (0 stopped, 1 crashed,
70 the strategy raised, 78 refused); ``tradeloop kill`` exits 0 when the daemon applied the
switch and 3 when no daemon answered.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError, TradeloopError
from tradeloop.service.failure import EXIT_REFUSED, EXIT_STRATEGY, exit_code

__all__ = ["EXIT_REFUSED", "EXIT_STRATEGY", "add"]


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
        daemon.set_defaults(handler=run_daemon_command, daemon=name, exit_code_of=exit_code)

    kill = commands.add_parser(
        "kill",
        help="halt a paper/live daemon's trading (or set reduce-only, or resume)",
        description=(
            "The kill switch. Writes the mode into the daemon's state_dir/control.json (the "
            "state_dir found as the daemon finds it: the config's run.state_dir, or "
            "TRADELOOP_RUN_STATE_DIR, relative to the current directory; --state-dir names it "
            "directly), then waits for the daemon's own acknowledgement and says what it "
            "applied. A running daemon applies it within half a second, or, if a strategy "
            "callback holds it, before the orders of the bar in hand are sent; a daemon "
            "started later applies it at start.\n\n"
            "  halted       cancel every working order and refuse every new one (default)\n"
            "  reduce-only  cancel working orders that add exposure; only reducing orders pass\n"
            "  resume       back to normal trading (overrides a daily-loss stop for the day)\n\n"
            "Protective exits of a RiskManager still close positions in every mode. "
            "SIGUSR1 to the daemon is the same as 'tradeloop kill'.\n\n"
            "Exit status: 0 the daemon applied it; 3 no daemon answered (none runs on that "
            "state_dir, or it did not answer within --wait seconds): the switch is written "
            "and applies when one starts (or gets to it).\n\n"
            "Example: tradeloop kill --config deploy/paper.toml --reason 'model drift'\n"
            "         tradeloop kill --state-dir /var/lib/tradeloop/state   (systemd unit)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = kill.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, metavar="PATH", help="the daemon's config")
    where.add_argument("--state-dir", type=Path, metavar="DIR", help="the daemon's state_dir")
    mode = kill.add_mutually_exclusive_group()
    mode.add_argument("--reduce-only", action="store_true", help="reduce-only instead of halt")
    mode.add_argument("--resume", action="store_true", help="clear the kill: trade normally")
    kill.add_argument("--reason", default="tradeloop kill", help="recorded in logs and state")
    kill.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to wait for the daemon's answer (default 5)",
    )
    kill.set_defaults(handler=run_kill)


def run_daemon_command(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from tradeloop.config import load_config
    from tradeloop.logs import configure_logging, remember_secret
    from tradeloop.service.daemon import run_daemon

    configure_logging()
    try:
        config = load_config(args.config)
        for key, value in config.venue_settings.items():  # secrets belong in the env...
            if isinstance(value, str) and any(w in key for w in ("secret", "key", "token")):
                remember_secret(value)  # ...but one in the file is still never logged
        if args.daemon == "paper" and config.mode != "paper":
            raise ConfigError(f"{args.config}: run.mode is {config.mode!r}; use 'tradeloop live'")
        if args.daemon == "live" and config.mode != "live":
            raise ConfigError(f"{args.config}: run.mode is {config.mode!r}; use 'tradeloop paper'")
        try:
            return asyncio.run(
                run_daemon(
                    config, confirm_live=args.confirm_live, fresh=args.fresh, restored=args.restored
                )
            )
        finally:
            # the loop (and its SIGTERM handler) is gone, the state is written: a stop
            # signal now must not turn a finished run into a killed one (exit -15)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except TradeloopError as err:  # one JSON line for the log pipeline; main prints it too
        import structlog

        structlog.get_logger().error(
            "daemon_error",
            error=type(err).__name__,
            message=str(err),
            exit_code=exit_code(err),
            config=str(args.config),
        )
        raise


def run_kill(args: argparse.Namespace) -> int:
    import time
    import uuid

    from tradeloop.service.control import read_ack, write_control
    from tradeloop.service.lock import holder_pid

    state_dir, found = _state_dir_of(args)
    mode = "normal" if args.resume else "reduce_only" if args.reduce_only else "halted"
    request = uuid.uuid4().hex[:16]
    path = write_control(state_dir, mode, args.reason, request)
    pid = holder_pid(state_dir)
    if pid is None:
        print(
            f"tradeloop: no daemon runs on {state_dir} (nobody holds its lock; {found}). "
            f"{mode} ({args.reason}) is written to {path} and applies when a daemon starts "
            "there. If the daemon runs with another state_dir (a systemd unit or a container "
            "sets TRADELOOP_RUN_STATE_DIR), pass it with --state-dir."
        )
        return 3
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        ack = read_ack(state_dir)
        if ack is not None and ack.get("request") == request:
            print(
                f"tradeloop: {ack['mode']} ({ack['reason']}) applied by the daemon "
                f"(pid {ack['pid']}) on {state_dir}"
            )
            return 0
        time.sleep(0.05)
    print(
        f"tradeloop: the daemon (pid {pid}) on {state_dir} has not answered within "
        f"{args.wait:g} s (a strategy callback may be holding it). {mode} is written to "
        f"{path}: it applies before that daemon sends its next order. Check with "
        "'tradeloop kill' again, its log (gate_mode_changed), or /metrics."
    )
    return 3


def _state_dir_of(args: argparse.Namespace) -> tuple[Path, str]:
    """The state_dir, absolute, found as the daemon finds it; and how it was found."""
    import os

    from tradeloop.config import load_config

    if args.state_dir is not None:
        return args.state_dir.absolute(), "from --state-dir"
    config = load_config(args.config)
    how = (
        "TRADELOOP_RUN_STATE_DIR"
        if "TRADELOOP_RUN_STATE_DIR" in os.environ
        else f"run.state_dir of {args.config}"
    )
    if not config.state_dir.is_absolute():
        how += f", relative to {Path.cwd()}"
    return config.state_dir.absolute(), f"state_dir from {how}"
