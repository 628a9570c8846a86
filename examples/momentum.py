"""A prices-only strategy for fetched history (the README's fetch → backtest → sweep walk).

Long when the close is more than ``threshold`` above its mean over the last ``lookback`` bars,
flat when it falls back below that mean; 45 % of equity per asset. It needs no signal column,
so it runs on what ``tradeloop fetch`` writes.
"""

from collections import deque
from collections.abc import Mapping
from typing import Any

from tradeloop import MarketEvent, Strategy


class Momentum(Strategy):
    """Trend following on the close's distance from its ``lookback``-bar mean."""

    def __init__(self, lookback: int = 60, threshold: float = 0.002) -> None:
        super().__init__()
        self.lookback = lookback
        self.threshold = threshold
        self.closes: dict[str, deque[float]] = {}

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        closes = self.closes.setdefault(event.asset_id, deque(maxlen=self.lookback))
        closes.append(event.close)
        if len(closes) < self.lookback:
            return
        mean = sum(closes) / len(closes)
        held = self.get_position(event.asset_id)
        if held == 0 and event.close > mean * (1.0 + self.threshold):
            self.buy_percent(event.asset_id, 0.45, reason="momentum")
        elif held > 0 and event.close < mean:
            self.close_position(event.asset_id, reason="below_mean")
