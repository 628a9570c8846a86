"""The threshold rule's constants and a hand replay of it, shared by tradeloop and backtrader.

numpy only: the backtrader worker imports this without importing tradeloop, so its peak RSS
is backtrader's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BUY_ABOVE", "BUY_PERCENT", "SELL_BELOW", "expected_trades"]

BUY_ABOVE = 0.8
SELL_BELOW = 0.4
BUY_PERCENT = 0.95


def expected_trades(ml_pred: Sequence[float] | np.ndarray) -> int:
    """Round trips the threshold rule makes when every order fills at the next bar's open.

    An entry decided on bar t is filled before bar t+1's callback, so the rule is a plain
    two-state machine; an exit decided on the last bar never fills.
    """
    values = np.asarray(ml_pred).tolist()
    long = False
    closed = 0
    last = len(values) - 1
    for t, pred in enumerate(values):
        if not long:
            if pred > BUY_ABOVE and t < last:
                long = True
        elif pred < SELL_BELOW and t < last:
            long = False
            closed += 1
    return closed
