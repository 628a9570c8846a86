"""Research workflow: parameter sweeps and walk-forward analysis, local or on a Dask cluster.

from tradeloop import sweep, walk_forward
"""

from tradeloop.research.grid import expand_grid
from tradeloop.research.sweep import sweep
from tradeloop.research.walkforward import WalkForwardResult, Window, rolling_windows, walk_forward

__all__ = [
    "WalkForwardResult",
    "Window",
    "expand_grid",
    "rolling_windows",
    "sweep",
    "walk_forward",
]
