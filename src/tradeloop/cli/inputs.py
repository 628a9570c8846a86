"""What several commands read from the shell: signal lists and context files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["context_from", "signal_list"]


def signal_list(text: str | None) -> list[str] | None:
    """``--signals A,B`` as a list; None (every numeric column) when not given."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def context_from(path: Path | None) -> Any:
    import polars as pl

    from tradeloop.data.context import Context
    from tradeloop.errors import DataError

    if path is None:
        return None
    if not path.exists():
        raise DataError(f"{path}: no such context file")
    frame = (
        pl.read_parquet(path)
        if path.suffix == ".parquet"
        else pl.read_csv(path, try_parse_dates=True)
    )
    return Context(frame)
