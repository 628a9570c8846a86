"""The one error tree of tradeloop.

Every exception tradeloop raises on purpose derives from ``TradeloopError``::

    TradeloopError
    ├── DataError                  bad bars, signals or context (names file, row, asset, time)
    │   ├── UnknownSignalError     also a KeyError: ``event.signals["typo"]``
    │   ├── UnknownContextError    also a KeyError: ``context["typo"]``
    │   └── FeatureError           a feature function failed, timed out or returned junk
    ├── ConfigError                an engine, broker or CLI setting that cannot work
    ├── MissingExtraError          also an ImportError: an optional extra is not installed
                                   (the message names it: pip install 'tradeloop[report]')
    ├── OrderError                 an order request that is malformed (never a rejection:
    │                              rejections are events, the run goes on)
    ├── StrategyNotRunningError    also a ValueError: a helper called outside a run
    ├── StrategyError              a strategy callback raised in a daemon (names callback,
    │                              timestamp, asset; the original is its __cause__)
    ├── StateError                 a daemon's state_dir cannot be trusted or written
    │   ├── StateLockedError       another daemon holds the state_dir (names its pid)
    │   ├── StateMismatchError     the journal belongs to another run (strategy, cash, venue)
    │   ├── StateMissingError      the journal is gone or empty beside an earlier run's files
    │   ├── StateDamagedError      the journal is not a readable SQLite database
    │   ├── StateRollbackError     the journal is behind what the run had committed
    │   └── StateStorageError      the state_dir cannot be written (read-only, disk full)
    ├── WorkerLostError            a sweep's worker processes kept dying; runs left unfinished
    └── AdapterError               venue adapters (feeds and brokers)
        ├── ConnectionLostError
        ├── RateLimitError         carries ``retry_after_s``
        ├── VenueProtocolError
        ├── OrderRejectedError     the venue refused an order (it does not exist there)
        │   └── DuplicateOrderError    ...because its client id is taken: it exists, look it up
        └── OutcomeUnknownError    a request may or may not have taken effect: look it up

A message says what was wrong, where, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "ConfigError",
    "ConnectionLostError",
    "DataError",
    "DuplicateOrderError",
    "FeatureError",
    "MissingExtraError",
    "OrderError",
    "OrderRejectedError",
    "OutcomeUnknownError",
    "RateLimitError",
    "StateDamagedError",
    "StateError",
    "StateLockedError",
    "StateMismatchError",
    "StateMissingError",
    "StateRollbackError",
    "StateStorageError",
    "StrategyError",
    "StrategyNotRunningError",
    "TradeloopError",
    "UnknownContextError",
    "UnknownSignalError",
    "VenueProtocolError",
    "WorkerLostError",
]


class TradeloopError(Exception):
    """Root of every error tradeloop raises on purpose."""


class DataError(TradeloopError):
    """Input data (bars, signals, context, features) that cannot be trusted."""


class _NamedKeyError(DataError, KeyError):
    """A KeyError whose message reads as a sentence, not as a quoted repr."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownSignalError(_NamedKeyError):
    """A signal name that the feed does not carry."""


class UnknownContextError(_NamedKeyError):
    """A context name that no context series provides."""


class FeatureError(DataError):
    """A feature provider failed, timed out, or returned something that is not features."""


class ConfigError(TradeloopError):
    """A setting that cannot work, caught before the run starts."""


class MissingExtraError(TradeloopError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


class OrderError(TradeloopError):
    """A malformed order request: a negative quantity, a missing limit price."""


class StrategyNotRunningError(TradeloopError, ValueError):
    """A strategy helper was called while no broker is attached (outside a run)."""


class StrategyError(TradeloopError):
    """A strategy callback raised while a daemon ran it: where (callback, bar time, asset)
    and what (the original exception is ``__cause__``)."""

    def __init__(
        self, message: str, *, callback: str, ts_ns: int | None, asset_id: str | None
    ) -> None:
        super().__init__(message)
        self.callback = callback
        self.ts_ns = ts_ns
        self.asset_id = asset_id


class StateError(TradeloopError):
    """A daemon's state_dir that cannot be trusted or written: the daemon refuses to trade
    on a guess (nothing is decided or sent) and says how to recover."""


class StateLockedError(StateError):
    """Another live process holds the state_dir's lock."""


class StateMismatchError(StateError):
    """The journal was written by a different run (strategy, parameters, cash, venue)."""


class StateMissingError(StateError):
    """The journal is missing or empty while files of an earlier run remain."""


class StateDamagedError(StateError):
    """The journal is not a readable SQLite database (truncated, overwritten)."""


class StateRollbackError(StateError):
    """The journal holds fewer commits than the run had made (its -wal lost or damaged)."""


class StateStorageError(StateError):
    """The state_dir cannot be written: read-only, full, or an I/O error."""


class WorkerLostError(TradeloopError):
    """Sweep workers died (killed, out of memory, crashed) more often than retries allow."""


class AdapterError(TradeloopError):
    """A failure inside a venue adapter, translated from the library that raised it."""


class ConnectionLostError(AdapterError):
    """The venue connection dropped or went silent."""


class RateLimitError(AdapterError):
    """The venue asked us to slow down."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VenueProtocolError(AdapterError):
    """The venue sent something its protocol does not allow."""


class OrderRejectedError(AdapterError):
    """The venue refused the order; it does not exist there (safe to decide again)."""


class DuplicateOrderError(OrderRejectedError):
    """The venue refused a submit because an order with this client order id already exists
    (Binance -2010 "Duplicate order sent.", Alpaca 422 "client_order_id must be unique").

    Unlike its parent it does NOT mean "nothing exists": the order is there, in some state.
    ``LiveBroker`` looks it up by client id and adopts what the venue says; it never decides
    the order again.
    """


class OutcomeUnknownError(AdapterError):
    """A request may or may not have taken effect (timeout, 5xx, connection lost).

    Resolve it by looking the client order id up; never by sending it again.
    """
