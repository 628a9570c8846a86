"""The bundled ML strategy (`make demo`): buy on a confident prediction, stand aside when VIX
is high, exit when the prediction fades. The same class runs in backtest, paper and live.
"""

from collections.abc import Mapping
from typing import Any

from tradeloop import MarketEvent, Strategy


class MLStrategy(Strategy):
    """Long-only: enter above ``entry`` with 30 % of equity per asset, exit below ``exit``.

    ``signal`` names the prediction it reads (``ml_pred``, the sample data's column, or a live
    model's feature such as ``examples/ml_setup.py``'s ``model_score``)."""

    def __init__(
        self,
        entry: float = 0.65,
        exit: float = 0.45,
        max_vix: float = 30.0,
        signal: str = "ml_pred",
    ) -> None:
        super().__init__()
        self.entry = entry
        self.exit = exit
        self.max_vix = max_vix
        self.signal = signal

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        vix = context.get("VIX")
        held = self.get_position(event.asset_id)
        if vix is not None and vix > self.max_vix:
            if held > 0:
                self.close_position(event.asset_id, reason="vix_filter")
            return
        prediction = event.signals[self.signal]
        if prediction > self.entry and held == 0:
            self.buy_percent(event.asset_id, 0.30)
        elif held > 0 and prediction < self.exit:
            self.close_position(event.asset_id, reason="signal_exit")
