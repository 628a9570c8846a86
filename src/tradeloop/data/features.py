"""Feature providers: one source of per-asset features and market-wide features.

The same provider fills ``event.signals`` / ``event.context`` and serves the risk layer, so a
strategy and its risk rules never disagree about a number. Lookups are as-of: the last row at
or before the timestamp, never a later one.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.clock import utc_ns
from tradeloop.data.context import Context
from tradeloop.data.feed import to_polars
from tradeloop.data.validation import utc_ns_expr
from tradeloop.errors import ConfigError, DataError, FeatureError

__all__ = ["CallableFeatureProvider", "FeatureProvider", "PrecomputedFeatureProvider"]


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
        if entry is None:
            return {}
        ts, values = entry
        index = int(np.searchsorted(ts, utc_ns(timestamp), side="right")) - 1
        if index < 0:
            return {}
        return dict(zip(self.asset_features, values[index].tolist(), strict=True))

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
        joined = bars.sort("ts_ns").join_asof(
            self._asset_frame.sort("ts_ns"),
            on="ts_ns",
            by="asset_id",
            strategy="backward",
            check_sortedness=False,  # both sides were just sorted by time, so each group is too
        )
        return joined.with_columns(pl.col(self.asset_features).fill_null(float("nan")))


class CallableFeatureProvider:
    """Features computed on demand: ``compute_fn(asset_id, timestamp) -> dict`` and
    ``compute_market_fn(timestamp) -> dict``. Either may be omitted.

    In a paper or live run either function may be ``async`` (a model server, a database):
    the runtime asks for every asset of a timestamp concurrently and gives up after
    ``timeout_s``; a failure or a timeout skips that timestamp's decisions (logged and
    counted) rather than deciding on missing numbers. A replay backtest needs plain
    functions, and calls them in line.
    """

    def __init__(
        self,
        compute_fn: Callable[[str, datetime], Any] | None = None,
        compute_market_fn: Callable[[datetime], Any] | None = None,
        *,
        timeout_s: float | None = 1.0,
    ) -> None:
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0 (or None for no limit), got {timeout_s}")
        self._compute = compute_fn
        self._compute_market = compute_market_fn
        self.timeout_s = timeout_s
        self.is_async = any(
            fn is not None and inspect.iscoroutinefunction(fn)
            for fn in (compute_fn, compute_market_fn)
        )

    @property
    def has_asset_features(self) -> bool:
        return self._compute is not None

    def get_features(self, asset_id: str, timestamp: datetime) -> Mapping[str, float]:
        if self._compute is None:
            return {}
        return _checked(self._compute(asset_id, timestamp), f"features of {asset_id}")

    def get_market_features(self, timestamp: datetime) -> Mapping[str, Any]:
        if self._compute_market is None:
            return {}
        return _checked(self._compute_market(timestamp), "market features")

    async def fetch(
        self, asset_ids: list[str], timestamp: datetime
    ) -> tuple[list[Mapping[str, float]], Mapping[str, Any]]:
        """Every asset's features and the market's for one timestamp (the live runtime's call).

        Raises ``FeatureError`` if a function fails, returns something other than a mapping,
        or (async functions) the whole timestamp takes longer than ``timeout_s``.
        """
        if not self.is_async:
            try:
                return [self.get_features(a, timestamp) for a in asset_ids], (
                    self.get_market_features(timestamp)
                )
            except FeatureError:
                raise
            except Exception as err:
                raise FeatureError(f"a feature function raised {err!r}") from err
        try:
            async with asyncio.timeout(self.timeout_s):
                per_asset, market = await asyncio.gather(
                    asyncio.gather(*(_call(self._compute, a, timestamp) for a in asset_ids)),
                    _call(self._compute_market, timestamp),
                )
        except TimeoutError:
            raise FeatureError(
                f"features for {len(asset_ids)} assets took longer than {self.timeout_s:g} s"
            ) from None
        except FeatureError:
            raise
        except Exception as err:
            raise FeatureError(f"a feature function raised {err!r}") from err
        pairs = zip(per_asset, asset_ids, strict=True)
        checked = [_checked(f, f"features of {a}") for f, a in pairs]
        return checked, _checked(market, "market features")


async def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    if fn is None:
        return {}
    value = fn(*args)
    return await value if inspect.isawaitable(value) else value


def _checked(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FeatureError(f"{what}: expected a dict of name -> value, got {type(value).__name__}")
    return value
