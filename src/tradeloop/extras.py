"""Optional dependencies and the extra that installs each: the import error says which.

``pip install tradeloop`` is the core (bars, backtests, paper and live); the extras add
``[pandas]`` (pandas frames, ``returns_series()``), ``[report]`` (plotly: the HTML reports,
``result.plot()``) and ``[cluster]`` (Dask sweeps). Every place that needs one imports it
through ``require`` (or raises ``missing_extra``), so the error names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tradeloop.errors import MissingExtraError

__all__ = ["EXTRAS", "missing_extra", "require"]

# top-level module → the extra that brings it
EXTRAS = {
    "pandas": "pandas",
    "pyarrow": "pandas",
    "plotly": "report",
    "dask": "cluster",
    "distributed": "cluster",
}


def missing_extra(module: str, purpose: str) -> MissingExtraError:
    """The error for ``purpose`` needing ``module``: ``pip install 'tradeloop[<extra>]'``."""
    root = module.partition(".")[0]
    extra = EXTRAS.get(root)
    fix = f"pip install 'tradeloop[{extra}]'" if extra else f"pip install {root}"
    error = MissingExtraError(f"{purpose} needs {root}, which is not installed. Fix: {fix}")
    error.name = root  # as ModuleNotFoundError sets it
    return error


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming the extra for ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise missing_extra(module, purpose) from err
