"""The three context tests of seed 000 (Multi-Source Data Integration), section 9, ported.

Ported as written where tradeloop allows; the differences, each needed, are noted in place:
pandas 3 spells the hourly frequency "h" (not "H"), and what the seed reads off
``result.recorded_context`` / ``result.trades`` is read from the strategy and from
``result.orders`` / ``result.fills``.
"""

from datetime import date

import pandas as pd

from tradeloop import Engine, Strategy
from tradeloop.data import Context, HistoricalDataFeed


def test_context_hourly_vix_daily_bars_reads_value_at_each_bar_time() -> None:
    # Daily stock bars
    aapl = pd.DataFrame(
        {
            "close": [100, 101, 102],
        },
        index=pd.date_range("2023-01-01", periods=3, freq="D"),
    )

    # Intraday VIX (hourly); the seed's freq="H" is "h" since pandas 3
    vix_hourly = pd.Series(
        range(72),  # Values 0-71
        index=pd.date_range("2023-01-01", periods=72, freq="h"),
    )

    class RecordingStrategy(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.recorded_context: list[dict[str, object]] = []

        def on_market_data(self, event, context):
            self.recorded_context.append(dict(context))

    # Expected: Stock bar at day N should use VIX at hour 24*N
    # Day 0 (2023-01-01): VIX hour 0 = 0
    # Day 1 (2023-01-02): VIX hour 24 = 24
    # Day 2 (2023-01-03): VIX hour 48 = 48
    strategy = RecordingStrategy()
    engine = Engine(
        feed=HistoricalDataFeed(aapl, signals=[]),
        context=Context({"VIX": vix_hourly}),
        strategy=strategy,
    )

    engine.run()
    assert strategy.recorded_context == [{"VIX": 0}, {"VIX": 24}, {"VIX": 48}]


def test_vix_filter_spike_day_submits_no_order() -> None:
    aapl = pd.DataFrame(
        {
            "ml_pred": [0.9, 0.9, 0.9, 0.9],  # Always bullish
            "close": [100, 101, 102, 103],
        },
        index=pd.date_range("2023-01-01", periods=4),
    )

    vix = pd.Series([15, 15, 35, 15], index=aapl.index)  # Spike on day 3

    class VIXFilterStrategy(Strategy):
        def on_market_data(self, event, context):
            if context.get("VIX", 0) > 30:
                return
            if event.data.signals["ml_pred"] > 0.8:
                self.buy_percent(event.asset_id, 1.0)

    engine = Engine(
        feed=HistoricalDataFeed(aapl, signals=["ml_pred"]),
        context=Context({"VIX": vix}),
        strategy=VIXFilterStrategy(),
    )

    result = engine.run()

    # Worked out by hand (100,000 cash, no costs; close-only bars, so open = close; a market
    # order decided on a bar fills at the next bar's open):
    # Jan 1  VIX 15: buy_percent(1.0) sizes 100,000 / 100 = 1,000 shares; the cash check
    #        needs 1,000 x 100 = 100,000 <= 100,000, so order 1 is accepted.
    # Jan 2  order 1 fills at the open, 101: 1,000 x 101 = 101,000 > cash, so the broker fills
    #        what cash allows, floor(100,000 / 101) = 990 shares (99,990; 10 cash left) and
    #        cancels the rest. VIX 15: equity 10 + 990 x 101 = 100,000 sizes 990 shares, which
    #        need 99,990 > 10 of cash: order 2 is rejected.
    # Jan 3  VIX 35 (the spike): the strategy returns, no order.
    # Jan 4  VIX 15: equity 10 + 990 x 103 = 101,980 sizes 990 shares (101,970 > 10): order 3
    #        is rejected.
    # So orders are submitted on days 0, 1 and 3 (never on the spike day), and one fill lands.
    orders = list(result.orders.iter_rows(named=True))
    submitted = [o["submitted_at"].date() for o in orders]
    assert submitted == [date(2023, 1, 1), date(2023, 1, 2), date(2023, 1, 4)]
    assert date(2023, 1, 3) not in submitted
    assert [o["filled_qty"] for o in orders] == [990.0, 0.0, 0.0]
    assert [o["status"] for o in orders[1:]] == ["rejected", "rejected"]
    fills = [
        (f["timestamp"].date(), f["side"], f["qty"], f["price"])
        for f in result.fills.rows(named=True)
    ]
    assert fills == [(date(2023, 1, 2), "buy", 990.0, 101.0)]
    assert result["final_value"] == 10.0 + 990 * 103.0


def test_context_three_assets_looked_up_once_per_timestamp() -> None:
    """Verify VIX is computed once, used for all assets"""
    days = pd.bdate_range("2023-01-02", periods=252)

    def bars(index: pd.DatetimeIndex, start: float) -> pd.DataFrame:
        return pd.DataFrame({"close": [start + 0.1 * i for i in range(len(index))]}, index=index)

    # Calendars differ so the distinct timestamps are a union, not one feed's length:
    # MSFT starts five days late; GOOGL has no bar when the day of the year is a multiple of 10.
    aapl_df = bars(days, 150.0)
    msft_df = bars(days[5:], 250.0)
    googl_df = bars(days[days.day_of_year % 10 != 0], 90.0)
    vix_series = pd.Series([15.0 + (i % 20) for i in range(len(days))], index=days)

    feeds = {
        "AAPL": HistoricalDataFeed(aapl_df, signals=[]),
        "MSFT": HistoricalDataFeed(msft_df, signals=[]),
        "GOOGL": HistoricalDataFeed(googl_df, signals=[]),
    }

    # Track context lookups: the seed patches pd.Series.asof; tradeloop's lookup is
    # Context.at_ns, called by the replay loop.
    class CountingContext(Context):
        lookups: list[int]

        def at_ns(self, ts_ns: int):
            self.lookups.append(ts_ns)
            return super().at_ns(ts_ns)

    class DummyStrategy(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.snapshots: dict[object, set[int]] = {}
            self.events = 0

        def on_market_data(self, event, context):
            self.events += 1
            assert context.get("VIX") is not None
            self.snapshots.setdefault(event.timestamp, set()).add(id(context))

    context = CountingContext({"VIX": vix_series})
    context.lookups = []
    strategy = DummyStrategy()
    engine = Engine(feeds=feeds, context=context, strategy=strategy)
    engine.run()

    distinct = aapl_df.index.union(msft_df.index).union(googl_df.index)
    n_bars = len(aapl_df) + len(msft_df) + len(googl_df)
    assert len(distinct) == 252
    assert n_bars < 3 * 252
    assert strategy.events == n_bars  # every asset-bar was dispatched ...
    assert len(context.lookups) == len(distinct)  # ... but context was looked up per timestamp
    assert context.lookups == sorted(set(context.lookups))
    assert all(len(ids) == 1 for ids in strategy.snapshots.values())  # one snapshot, all assets
