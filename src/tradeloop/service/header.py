"""The journal's header: what run a journal belongs to, checked at every restart. Pure.

A journal is replayed into a book at each start, so it must meet the run that wrote it: the
same strategy and parameters, the same starting cash and costs (the journaled fills are
re-applied from them), the same venue and account, the same universe, context and features.
``run_header`` says what the config and setup describe; ``differences`` names each field on
which a journal's header disagrees, and a non-empty answer is a refusal: a restart never
inherits another run's positions.

Operational settings may change between restarts: the feed URL, health port, the pre-trade
gate's limits (``[risk]``), timeouts. The strategy's source file is recorded too, but a
changed file is only logged (fixing a bug and resuming is how a failed run carries on).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass
from typing import Any

from tradeloop.config import DaemonConfig
from tradeloop.setup import Setup

__all__ = ["IDENTITY", "RunHeader", "differences", "paper_costs", "run_header"]

# the fields that make a run what it is; a journal from a run that differs in one is refused
IDENTITY = (
    "strategy",
    "params",
    "mode",
    "venue",
    "account",
    "initial_cash",
    "costs",
    "universe",
    "context",
    "features",
)
_DEFAULT_CASH = 100_000.0


@dataclass(frozen=True, slots=True)
class RunHeader:
    """What a journal belongs to (JSON-safe values only)."""

    strategy: str  # the strategy's name (class or factory)
    params: dict[str, Any]  # the parameters it was built with
    mode: str  # "paper" or "live"
    venue: str  # "paper" or the adapter's name
    account: str | None  # live: a hash of the venue settings (URLs, symbols, key names)
    initial_cash: float | None  # paper: the starting cash; live: the account's (not set here)
    costs: dict[str, str]  # paper: each broker option as given (repr)
    universe: list[str] | None
    context: list[str] | None
    features: str | None  # the config's feature provider spec
    spec: str  # the config's strategy spec (where it was loaded from), for the record
    code: str | None  # sha256 of the strategy's source file, when it has one

    @property
    def config_hash(self) -> str:
        """A digest of the identity fields: equal hashes, same run."""
        return _digest({name: getattr(self, name) for name in IDENTITY})

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "config_hash": self.config_hash}, sort_keys=True)


def paper_costs(config: DaemonConfig, setup: Setup) -> dict[str, Any]:
    """The paper broker's options: each cost and fill rule (``cash_shortfall``, ``calendar``,
    ``margin``) from the config, else the setup's, else the broker's default
    (``initial_cash`` included: 100,000)."""
    costs = setup.broker_options()
    for key in ("initial_cash", "commission", "slippage", "cash_shortfall", "calendar", "margin"):
        if getattr(config, key) is not None:
            costs[key] = getattr(config, key)
    costs.setdefault("initial_cash", _DEFAULT_CASH)
    return costs


def run_header(config: DaemonConfig, setup: Setup) -> RunHeader:
    """The header of the run ``config`` and ``setup`` describe."""
    paper = config.mode == "paper"
    costs = paper_costs(config, setup) if paper else {}
    cash = costs.pop("initial_cash", None)
    return RunHeader(
        strategy=setup.name,
        params=json.loads(json.dumps({**setup.params, **config.params}, default=repr)),
        mode=config.mode,
        venue="paper" if paper else str(config.venue_name),
        account=None if paper else _digest(dict(config.venue_settings)),
        initial_cash=None if cash is None else float(cash),
        costs={key: repr(value) for key, value in sorted(costs.items())},
        universe=list(config.universe) if config.universe is not None else None,
        context=list(config.context) if config.context is not None else None,
        features=config.features,
        spec=config.strategy,
        code=_source_digest(setup),
    )


def differences(stored: dict[str, Any], current: RunHeader) -> list[str]:
    """Each identity field on which a journal's header (``stored``) and ``current`` differ."""
    found = []
    for name in IDENTITY:
        before, now = stored.get(name), getattr(current, name)
        if _canonical(before) != _canonical(now):
            found.append(f"{name}: journal {_show(before)}, now {_show(now)}")
    return found


def _source_digest(setup: Setup) -> str | None:
    try:
        source = inspect.getsourcefile(setup.strategy)
    except TypeError:
        return None
    if source is None:
        return None
    try:
        with open(source, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()[:16]
    except OSError:
        return None


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:16]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _show(value: Any) -> str:
    return "none" if value is None else _canonical(value)
