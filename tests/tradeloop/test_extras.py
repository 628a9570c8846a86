"""Optional extras: whatever needs one and lacks it says which to install, in the error itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Scripted, bars
from tradeloop import BacktestResult, Engine
from tradeloop.errors import MissingExtraError, TradeloopError
from tradeloop.extras import missing_extra, require

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample_result() -> BacktestResult:
    rows = [(i, "A", 10 + i, 11 + i, 9 + i, 10 + i) for i in range(5)]
    return Engine(feed=bars(rows), strategy=Scripted({(0, "A"): lambda s, e: s.buy("A", 1)})).run()


@pytest.mark.parametrize(
    ("module", "extra"),
    [("pandas", "pandas"), ("plotly.graph_objects", "report"), ("distributed", "cluster")],
)
def test_require_missing_module_names_its_extra(
    module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules: the import fails
    with pytest.raises(MissingExtraError, match=rf"pip install 'tradeloop\[{extra}\]'") as caught:
        require(module, "the thing")
    assert isinstance(caught.value, ImportError)
    assert isinstance(caught.value, TradeloopError)
    assert caught.value.name == module.partition(".")[0]


def test_missing_extra_of_an_unknown_module_says_pip_install_it() -> None:
    assert "Fix: pip install quantstats" in str(missing_extra("quantstats", "tearsheets"))


def test_returns_series_without_pandas_names_the_pandas_extra(
    sample_result: BacktestResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"returns_series\(\) needs pandas.*\[pandas\]"):
        sample_result.returns_series()


def test_plot_without_plotly_names_the_report_extra(
    sample_result: BacktestResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("plotly", "plotly.graph_objects", "plotly.subplots", "plotly.offline"):
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("tradeloop.results.plot", "tradeloop.results.report"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(MissingExtraError, match=r"needs plotly.*tradeloop\[report\]"):
        sample_result.plot()


@pytest.mark.parametrize(
    "example",
    ["02_user_journey.py", "03_vix_filter_single_asset.py", "05_multi_asset_shared_context.py"],
)
def test_pandas_examples_without_pandas_say_which_extra(example: str) -> None:
    code = (
        "import runpy, sys; sys.modules['pandas'] = None; "
        f"runpy.run_path({str(ROOT / 'examples' / example)!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 1
    assert "MissingExtraError: this example needs pandas" in out.stderr
    assert "pip install 'tradeloop[pandas]'" in out.stderr
