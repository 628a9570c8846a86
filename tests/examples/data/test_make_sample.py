"""examples/data/make_sample.py: the bundled sample is exactly what the script generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from tests.examples.running import DATA


def test_bundled_sample_data_is_reproducible_from_its_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DATA / "make_sample.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in ("sample.parquet", "vix.parquet"):
        assert_frame_equal(pl.read_parquet(tmp_path / name), pl.read_parquet(DATA / name))
