"""Feature providers, and the one join of their features into a timestamp's bars. Pure.

Per-asset features become signal columns of the bars (what ``event.signals``, the batch and
the risk rules read: one view, so a strategy and its risk rules never disagree about a
number); market-wide features become context. Lookups are as-of: the last row at or before
the timestamp, never a later one.

Both loops join the same way (``FeatureJoin``): a precomputed provider's per-asset rows by
the same as-of index (a replay joins every timestamp at once, a stream one at a time), its
market rows merged into the run's ``Context``; a callable provider asked at each timestamp,
the market function first, then every asset. A live run may ask async functions
concurrently (``tradeloop.runtime.features``); a replay calls plain functions in line.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.clock import utc_datetime, utc_ns
from tradeloop.data.context import Context, ContextSnapshot
from tradeloop.data.feed import to_polars
from tradeloop.data.validation import utc_ns_expr
from tradeloop.errors import ConfigError, DataError, FeatureError

__all__ = [
    "CallableFeatureProvider",
    "FeatureJoin",
    "FeatureProvider",
    "PrecomputedFeatureProvider",
    "checked_features",
]


@runtime_checkable
class FeatureProvider(Protocol):
    """Where features come from: per asset, and for the whole market."""

    def get_features(self, asset_id: str, timestamp: datetime) -> Mapping[str, float]: ...

    def get_market_features(self, timestamp: datetime) -> Mapping[str, Any]: ...


class PrecomputedFeatureProvider:
    """Features from a long frame: ``timestamp, asset_id, <features...>``.

    Rows whose asset is null are market-wide (VIX, breadth) and become context; the others are
    per-asset and become signals. A feature is per-asset if any asset row has a value for it.
    """

    def __init__(
        self,
        features_df: Any,
        timestamp_col: str = "timestamp",
        asset_col: str = "asset_id",
    ) -> None:
        frame = to_polars(features_df, timestamp_col)
        for required, option in ((timestamp_col, "timestamp_col"), (asset_col, "asset_col")):
            if required not in frame.columns:
                raise DataError(
                    f"features frame: no {required!r} column (columns: {frame.columns}). "
                    f"Fix: rename it or pass {option}=."
                )
        frame = frame.with_columns(
            utc_ns_expr(frame, timestamp_col, "features frame").alias("ts_ns")
        )
        names = [c for c in frame.columns if c not in {timestamp_col, asset_col, "ts_ns"}]
        is_market = pl.col(asset_col).is_null()
        asset_rows = frame.filter(~is_market)
        market_rows = frame.filter(is_market)
        self.asset_features = [n for n in names if asset_rows[n].is_not_null().any()]
        self.market_features = [n for n in names if market_rows[n].is_not_null().any()]
        self._asset_frame = asset_rows.select(
            pl.col(asset_col).cast(pl.String).alias("asset_id"),
            "ts_ns",
            *[pl.col(n).cast(pl.Float64).fill_null(float("nan")) for n in self.asset_features],
        ).sort("asset_id", "ts_ns")
        dups = self._asset_frame.select(pl.struct("asset_id", "ts_ns").is_duplicated().any()).item()
        if dups:
            raise DataError(
                "features frame: an (asset, timestamp) appears twice. Fix: keep one row each, "
                "e.g. df.unique(subset=['asset_id', 'timestamp'], keep='last')."
            )
        self._context = (
            Context(
                market_rows.select(timestamp_col, *self.market_features).sort(timestamp_col),
                timestamp_col=timestamp_col,
            )
            if self.market_features
            else Context()
        )
        self._index: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        for (asset,), part in self._asset_frame.partition_by("asset_id", as_dict=True).items():
            self._index[str(asset)] = (
                part["ts_ns"].to_numpy(),
                part.select(self.asset_features).to_numpy().astype(np.float64),
            )

    def get_features(self, asset_id: str, timestamp: datetime) -> Mapping[str, float]:
        """The asset's features as of ``timestamp``; empty before its first row."""
        entry = self._index.get(asset_id)
        if entry is None or not entry[0].size or utc_ns(timestamp) < int(entry[0][0]):
            return {}
        values = self._asof(asset_id, np.array([utc_ns(timestamp)], dtype=np.int64))
        assert values is not None
        return dict(zip(self.asset_features, values[0].tolist(), strict=True))

    def _asof(self, asset_id: str, ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.float64] | None:
        """The asset's feature rows as of each of ``ts_ns`` (NaN before its first row): the
        one lookup behind ``get_features``, ``lookup`` and ``join_signals``."""
        entry = self._index.get(asset_id)
        if entry is None:
            return None
        ts, values = entry
        index = np.searchsorted(ts, ts_ns, side="right") - 1
        out = values[np.maximum(index, 0)]
        out[index < 0] = np.nan
        return out

    def lookup(self, asset_ids: list[str], ts_ns: int) -> npt.NDArray[np.float64]:
        """Every asset's features at one timestamp: rows of ``asset_ids``, columns of
        ``asset_features`` (NaN where an asset has no row yet)."""
        out = np.full((len(asset_ids), len(self.asset_features)), math.nan)
        at = np.array([ts_ns], dtype=np.int64)
        for i, asset_id in enumerate(asset_ids):
            rows = self._asof(asset_id, at)
            if rows is not None:
                out[i] = rows[0]
        return out

    def get_market_features(self, timestamp: datetime) -> Mapping[str, Any]:
        """Market-wide features as of ``timestamp`` (``None`` before a series starts)."""
        return self._context.at(timestamp)

    def market_context(self) -> Context:
        """The market-wide rows as a ``Context`` (used by the engine and the risk layer)."""
        return self._context

    def join_signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        """``bars`` (normal form) with the per-asset features joined as of each bar."""
        clash = [n for n in self.asset_features if n in bars.columns]
        if clash:
            raise DataError(
                f"features {clash} are also columns of the bar data; drop them from one side"
            )
        if not self.asset_features:
            return bars
        joined = np.full((bars.height, len(self.asset_features)), math.nan)
        rows = bars.with_row_index("_row").select("_row", "asset_id", "ts_ns")
        for (asset,), part in rows.partition_by("asset_id", as_dict=True).items():
            values = self._asof(str(asset), part["ts_ns"].to_numpy())
            if values is not None:
                joined[part["_row"].to_numpy()] = values
        return bars.with_columns(
            pl.Series(name, joined[:, j]) for j, name in enumerate(self.asset_features)
        )


class CallableFeatureProvider:
    """Features computed on demand: ``compute_fn(asset_id, timestamp) -> dict`` and
    ``compute_market_fn(timestamp) -> dict``. Either may be omitted. A ``compute_fn`` that
    takes a third argument gets the asset's bar at that timestamp (a mapping of ``open`` …
    ``volume`` and the bar's signals), so a model can score the bar it is handed.

    In a paper or live run either function may be ``async`` (a model server, a database):
    the runtime asks for every asset of a timestamp concurrently and gives up after
    ``timeout_s``; a failure or a timeout skips that timestamp's decisions (logged and
    counted) rather than deciding on missing numbers. A replay backtest needs plain
    functions, and calls them in line.

    ``asset_features`` names the per-asset features the function returns: they are then
    signal columns from the first bar on (NaN until a value comes), as a precomputed
    provider's are. Left out, a feature becomes a column from the first bar that has it.
    """

    def __init__(
        self,
        compute_fn: Callable[[str, datetime], Any] | None = None,
        compute_market_fn: Callable[[datetime], Any] | None = None,
        *,
        timeout_s: float | None = 1.0,
        asset_features: Sequence[str] = (),
    ) -> None:
        self.asset_features = list(dict.fromkeys(asset_features))
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0 (or None for no limit), got {timeout_s}")
        self._compute = compute_fn
        self._compute_market = compute_market_fn
        self.timeout_s = timeout_s
        self.is_async = any(
            fn is not None and inspect.iscoroutinefunction(_unwrapped(fn))
            for fn in (compute_fn, compute_market_fn)
        )
        self.takes_bar = compute_fn is not None and _arity(compute_fn) >= 3

    @property
    def has_asset_features(self) -> bool:
        return self._compute is not None

    @property
    def compute_fn(self) -> Callable[[str, datetime], Any] | None:
        return self._compute

    @property
    def compute_market_fn(self) -> Callable[[datetime], Any] | None:
        return self._compute_market

    def get_features(
        self, asset_id: str, timestamp: datetime, bar: Mapping[str, float] | None = None
    ) -> Mapping[str, float]:
        if self._compute is None:
            return {}
        args = (asset_id, timestamp, bar or {}) if self.takes_bar else (asset_id, timestamp)
        return checked_features(self._compute(*args), f"features of {asset_id}")

    def get_market_features(self, timestamp: datetime) -> Mapping[str, Any]:
        if self._compute_market is None:
            return {}
        return checked_features(self._compute_market(timestamp), "market features")


def _unwrapped(fn: Callable[..., Any]) -> Any:
    """The function itself, or a callable object's ``__call__`` (which may be async)."""
    return fn if inspect.isroutine(fn) else type(fn).__call__


def _arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (a callable object's ``__call__``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return 3
    return sum(p.kind in kinds for p in parameters)


def bar_of(columns: Mapping[str, npt.NDArray[np.float64]], i: int) -> dict[str, float]:
    """Row ``i`` of a timestamp's columns as the bar a feature function is handed."""
    return {k.removeprefix("signal:"): float(v[i]) for k, v in columns.items()}


def checked_features(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping of features; ``FeatureError`` otherwise."""
    if not isinstance(value, Mapping):
        raise FeatureError(f"{what}: expected a dict of name -> value, got {type(value).__name__}")
    return value


class FeatureJoin:
    """One timestamp's features joined into its columns and context: the join both loops use.

    ``columns`` maps ``"signal:<name>"`` to the timestamp's arrays (asset order). Per-asset
    features become such columns (NaN for an asset without the feature); a name seen once stays
    a column for the rest of the run (NaN when missing), so a signal never vanishes between
    bars. Market features (a callable provider's) join the context snapshot.
    """

    def __init__(self, provider: FeatureProvider) -> None:
        self.provider = provider
        self.names: list[str] = list(getattr(provider, "asset_features", ()))
        self.precomputed = isinstance(provider, PrecomputedFeatureProvider)

    def ask(
        self,
        asset_ids: list[str],
        ts_ns: int,
        columns: Mapping[str, npt.NDArray[np.float64]],
    ) -> tuple[list[Mapping[str, float]], Mapping[str, Any]]:
        """The provider's answer for one timestamp, called in line: the market's, then every
        asset's. Raises ``FeatureError`` if a function fails or returns something else."""
        provider = self.provider
        if isinstance(provider, PrecomputedFeatureProvider):
            return [], {}  # joined by ``join``; its market rows are in the run's context
        when = utc_datetime(ts_ns)
        try:
            market = provider.get_market_features(when)
            if isinstance(provider, CallableFeatureProvider) and provider.takes_bar:
                per_asset = [
                    provider.get_features(a, when, bar_of(columns, i))
                    for i, a in enumerate(asset_ids)
                ]
            else:
                per_asset = [provider.get_features(a, when) for a in asset_ids]
        except FeatureError:
            raise
        except Exception as err:
            raise FeatureError(f"a feature function raised {err!r}") from err
        return per_asset, market

    def join(
        self,
        ts_ns: int,
        asset_ids: list[str],
        columns: dict[str, npt.NDArray[np.float64]],
        per_asset: list[Mapping[str, float]],
        market: Mapping[str, Any],
        snapshot: ContextSnapshot,
    ) -> ContextSnapshot:
        """Write the features into ``columns`` (new arrays, never the caller's); return the
        snapshot with the market features added."""
        n = len(asset_ids)
        if self.precomputed:
            assert isinstance(self.provider, PrecomputedFeatureProvider)
            values = self.provider.lookup(asset_ids, ts_ns)
            for j, name in enumerate(self.names):
                self._add(columns, name, values[:, j].copy())
        else:
            seen = {name for features in per_asset for name in features}
            self.names.extend(sorted(seen - set(self.names)))
            for name in self.names:
                self._add(
                    columns,
                    name,
                    np.array([f.get(name, math.nan) for f in per_asset], dtype=np.float64)
                    if per_asset
                    else np.full(n, math.nan),
                )
        if market:
            snapshot = ContextSnapshot({**snapshot, **market})
        return snapshot

    def _add(self, columns: dict[str, npt.NDArray[np.float64]], name: str, values: Any) -> None:
        key = f"signal:{name}"
        if key in columns and not self._owned(key):
            raise ConfigError(
                f"feature {name!r} is also a signal of the bars; rename one of them "
                "(the provider's features and the feed's signals share one namespace)"
            )
        columns[key] = values

    def _owned(self, key: str) -> bool:
        return False
