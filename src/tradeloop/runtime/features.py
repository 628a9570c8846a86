"""Features for a stream run: a callable provider's functions may be ``async`` (a model
server, a database); every asset of a timestamp is then asked concurrently, within the
provider's ``timeout_s``. The join itself is ``data.features.FeatureJoin``, shared with the
replay; this module is only the asking.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloop.clock import utc_datetime
from tradeloop.data.features import (
    CallableFeatureProvider,
    FeatureJoin,
    bar_of,
    checked_features,
)
from tradeloop.errors import FeatureError

__all__ = ["ask_features"]


async def ask_features(
    join: FeatureJoin,
    asset_ids: list[str],
    ts_ns: int,
    columns: Mapping[str, npt.NDArray[np.float64]],
) -> tuple[list[Mapping[str, float]], Mapping[str, Any]]:
    """The provider's answer for one timestamp (see ``FeatureJoin.ask``).

    Raises ``FeatureError`` if a function fails, returns something other than a mapping,
    or (async functions) the whole timestamp takes longer than ``timeout_s``.
    """
    provider = join.provider
    if not (isinstance(provider, CallableFeatureProvider) and provider.is_async):
        return join.ask(asset_ids, ts_ns, columns)
    when = utc_datetime(ts_ns)
    try:
        async with asyncio.timeout(provider.timeout_s):
            market, per_asset = await asyncio.gather(
                _call(provider.compute_market_fn, when),
                asyncio.gather(
                    *(
                        _call(provider.compute_fn, a, when, bar_of(columns, i))
                        if provider.takes_bar
                        else _call(provider.compute_fn, a, when)
                        for i, a in enumerate(asset_ids)
                    )
                ),
            )
    except TimeoutError:
        raise FeatureError(
            f"features for {len(asset_ids)} assets took longer than {provider.timeout_s:g} s"
        ) from None
    except FeatureError:
        raise
    except Exception as err:
        raise FeatureError(f"a feature function raised {err!r}") from err
    pairs = zip(per_asset, asset_ids, strict=True)
    checked = [checked_features(f, f"features of {a}") for f, a in pairs]
    return checked, checked_features(market, "market features")


async def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    if fn is None:
        return {}
    value = fn(*args)
    return await value if inspect.isawaitable(value) else value
