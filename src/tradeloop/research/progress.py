"""The progress bar of a sweep or a walk-forward: finished runs, on a terminal only."""

from __future__ import annotations

from tqdm import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int, description: str, show: bool) -> tqdm:
    """A bar counting finished runs (shown on a terminal: ``sweep(progress=None)``)."""
    return tqdm(total=total, desc=description, unit="run", disable=not show, leave=False)
