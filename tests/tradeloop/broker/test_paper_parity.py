"""Every order kind of issue 13 gives the same fills, and the same order updates, in a replay
backtest and through ``Engine(ReplayFeed(...), strategy, PaperBroker(...))`` (the live
runtime): a matrix of strategies × the two runtimes over one synthetic market."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest

from tradeloop import (
    Engine,
    Margin,
    MarketEvent,
    PaperBroker,
    ReplayFeed,
    RiskManager,
    SimulationBroker,
    Strategy,
    VolumeShareSlippage,
    order_request,
)
from tradeloop.data.synthetic import synthetic_market
from tradeloop.risk import StopLoss

BARS, _ = synthetic_market(n_assets=3, n_bars=160, seed=13)


class Entries(Strategy):
    """Enters on a strong prediction with ``place``; once in, with nothing working, rests
    ``exits`` (or closes on a weak prediction). Records every order update it hears."""

    def __init__(
        self,
        place: Callable[[Strategy, MarketEvent], Any],
        exits: Callable[[Strategy, MarketEvent], Any] | None = None,
    ) -> None:
        super().__init__()
        self.place = place
        self.exits = exits
        self.told: list[tuple[int, str, float, str]] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        asset, pred = event.asset_id, event.signals["ml_pred"]
        if self.get_open_orders(asset):
            return
        if self.get_position(asset) == 0:
            if pred > 0.7:
                self.place(self, event)
        elif self.exits is not None:
            self.exits(self, event)
        elif pred < 0.4:
            self.close_position(asset)

    def on_order(self, order: Any) -> None:
        self.told.append((order.id, order.status.value, order.qty, order.message))

    def on_margin_call(self, call: Any) -> None:
        self.told.append((-1, "margin_call", call.equity, str(call.shorts)))


def _buy(s: Strategy, e: MarketEvent) -> Any:
    return s.buy(e.asset_id, 20)


def _oco_exits(s: Strategy, e: MarketEvent) -> None:
    held = s.get_position(e.asset_id)
    s.oco(
        order_request(e.asset_id, "sell", held, stop=e.close * 0.97),
        order_request(e.asset_id, "sell", held, limit=e.close * 1.03),
    )


def _oto(s: Strategy, e: MarketEvent) -> None:
    s.oto(
        order_request(e.asset_id, "buy", 15, limit=e.close * 0.995),
        order_request(e.asset_id, "sell", 15, limit=e.close * 1.03),
    )


# (entry, exits): exits None closes on a weak prediction
PLACES: dict[str, tuple[Callable[[Strategy, MarketEvent], Any], Any]] = {
    "bracket_prices": (
        lambda s, e: s.buy(e.asset_id, 20, stop_loss=e.close * 0.96, take_profit=e.close * 1.04),
        None,
    ),
    "bracket_fractions": (
        lambda s, e: s.buy(
            e.asset_id, 20, limit=e.close * 0.998, stop_loss_pct=0.03, take_profit_pct=0.05
        ),
        None,
    ),
    "oco": (_buy, _oco_exits),
    "oto": (_oto, None),
    "trailing": (_buy, lambda s, e: s.sell(e.asset_id, 20, trail_percent=0.03)),
    "good_till_date": (
        lambda s, e: s.buy(
            e.asset_id, 10, limit=e.close * 0.99, expire_at=e.timestamp + timedelta(days=3)
        ),
        None,
    ),
    "stop_limit": (
        lambda s, e: s.buy(e.asset_id, 10, stop=e.close * 1.005, limit=e.close),
        None,
    ),
    "sizing_at_fill": (lambda s, e: s.buy_percent(e.asset_id, 0.3, sizing="fill"), None),
    "target_at_fill": (
        lambda s, e: s.set_position_percent(e.asset_id, 0.3, sizing="fill"),
        None,
    ),
}


def _run_both(
    kind: tuple[Callable[[Strategy, MarketEvent], Any], Any], **options: Any
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    risk_factory = options.pop("risk", None)
    outcomes = []
    for broker_type in (SimulationBroker, PaperBroker):
        strategy = Entries(*kind)
        broker = broker_type(100_000.0, commission=5e-4, **options)
        feed: Any = BARS if broker_type is SimulationBroker else ReplayFeed(BARS)
        risk = risk_factory() if risk_factory is not None else None
        Engine(feed, strategy, broker, risk=risk).run()
        fills: list[Any] = [
            (f.ts_ns, f.asset_id, f.side, f.qty, f.price, f.commission, f.reason)
            for f in broker.fills
        ]
        fills += [(c.ts_ns, c.asset_id, c.amount, c.reason) for c in broker.book.charges]
        outcomes.append((fills, strategy.told))
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("kind", sorted(PLACES))
def test_order_kind_fills_identically_in_replay_and_paper(kind: str) -> None:
    replay, paper = _run_both(PLACES[kind])
    assert replay[0], f"{kind}: the strategy never filled, the parity proves nothing"
    assert paper == replay


def test_brackets_with_partial_fills_and_cash_rejects_match_on_paper() -> None:
    slip = VolumeShareSlippage(volume_limit=1e-5, price_impact=0.0)
    replay, paper = _run_both(PLACES["bracket_prices"], slippage=slip, cash_shortfall="reject")
    assert replay[0]
    assert paper == replay


def test_risk_exit_cancelling_resting_exits_matches_on_paper() -> None:
    replay, paper = _run_both(
        PLACES["bracket_prices"], risk=lambda: RiskManager().add_rule(StopLoss(0.01))
    )
    assert any("risk exit" in told[3] for told in replay[1])
    assert paper == replay


def test_shorts_with_margin_calls_and_borrow_fees_match_on_paper() -> None:
    # a tight maintenance (95 % of the shorts' value) so that calls happen in 160 bars
    margin = Margin(initial=1.0, maintenance=0.95, borrow_rate=0.5, liquidate=True)
    short = (lambda s, e: s.sell_percent(e.asset_id, 0.45), lambda s, e: None)  # held on
    replay, paper = _run_both(short, allow_short=True, margin=margin)
    assert any(told[1] == "margin_call" for told in replay[1])
    assert any(fill[-1] == "borrow_fee" for fill in replay[0])
    assert paper == replay


def test_day_orders_by_exchange_session_match_on_paper() -> None:
    day_limit = (lambda s, e: s.buy(e.asset_id, 10, limit=e.close * 0.995, tif="day"), None)
    replay, paper = _run_both(day_limit, calendar="XNYS")
    assert any(told[1] == "expired" for told in replay[1])
    assert paper == replay
