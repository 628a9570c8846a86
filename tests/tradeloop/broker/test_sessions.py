"""DAY orders by exchange session, and metrics annualised by the same calendar.

Times are UTC. In March 2024 before the 10th (no US daylight saving yet) the NYSE trades
14:30-21:00 UTC; exchange_calendars gives the sessions, checked by hand against that.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from tests.conftest import Scripted, bars
from tradeloop import ConfigError, Engine, HistoricalFeed, MarketEvent
from tradeloop.broker.sessions import Sessions

MON = datetime(2024, 3, 4, tzinfo=UTC)


def frame(times: list[datetime], lows: list[float], asset: str = "X") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": times,
            "asset_id": asset,
            "open": [100.0] * len(times),
            "high": [101.0] * len(times),
            "low": lows,
            "close": [100.0] * len(times),
        }
    )


class DayLimitAt(Scripted):
    """A DAY buy limit at 98 decided on the first bar."""

    def on_market_event(self, event: MarketEvent, context: Any) -> None:
        if not self.get_open_orders() and not self.broker.orders:  # type: ignore[union-attr]
            self.buy(event.asset_id, 1, limit=98.0, tif="day")


# decided Monday 20:59 (just before the close); the first eligible bar is Monday 21:30, after
# the close: under the NYSE calendar it belongs to Tuesday's session, so the order lives
# through Tuesday 20:59 and fills on Tuesday 15:00 (low 97); under UTC days it lives for
# Monday's date only and has expired by Tuesday
AFTER_HOURS = [
    MON + timedelta(hours=20, minutes=59),
    MON + timedelta(hours=21, minutes=30),
    MON + timedelta(days=1, hours=15),
    MON + timedelta(days=1, hours=20, minutes=59),
]
LOWS = [99.5, 99.5, 97.0, 99.5]


def test_day_order_by_exchange_session_lives_into_the_next_session_after_the_close() -> None:
    result = Engine(
        feed=HistoricalFeed(frame(AFTER_HOURS, LOWS)), strategy=DayLimitAt({}), calendar="XNYS"
    ).run()
    assert result.fills["price"].to_list() == [98.0]
    assert result.fills["timestamp"].to_list() == [AFTER_HOURS[2]]


def test_day_order_by_utc_date_expires_at_midnight() -> None:
    result = Engine(feed=HistoricalFeed(frame(AFTER_HOURS, LOWS)), strategy=DayLimitAt({})).run()
    assert result.fills.height == 0
    assert result.orders["status"].to_list() == ["expired"]


def test_day_order_over_a_weekend_belongs_to_mondays_session() -> None:
    # Friday 21:00 decision; the next bar is Saturday 12:00 (crypto-style data): on the NYSE
    # calendar it belongs to Monday's session, so the order still fills Monday 15:00; per
    # asset, a "24/7" asset in the same run expires it on Sunday
    fri = datetime(2024, 3, 1, 21, tzinfo=UTC)
    times = [
        fri,
        fri + timedelta(hours=15),
        fri + timedelta(days=1, hours=15),
        MON + timedelta(hours=15),
    ]
    lows = [99.5, 99.5, 99.5, 97.0]
    data = pl.concat([frame(times, lows, "SPY"), frame(times, lows, "BTC")])

    class BothAssets(Scripted):
        def on_market_event(self, event: MarketEvent, context: Any) -> None:
            if event.timestamp == fri:
                self.buy(event.asset_id, 1, limit=98.0, tif="day")

    result = Engine(
        feed=HistoricalFeed(data),
        strategy=BothAssets({}),
        calendar={"SPY": "XNYS", "BTC": "24/7"},
    ).run()
    status = dict(zip(result.orders["asset_id"], result.orders["status"], strict=True))
    assert status == {"BTC": "expired", "SPY": "filled"}


def test_metrics_annualise_by_the_calendar() -> None:
    rows = [(i, "X", 100 + i % 3, 103, 99, 100 + i % 2) for i in range(30)]  # 2024-01-01 on
    feed = bars(rows)
    script = {(0, "X"): lambda s, e: s.buy("X", 10)}
    # exchange_calendars: 252 NYSE sessions in 2024; 366 UTC days (a leap year); else 252
    nyse = Engine(feed=feed, strategy=Scripted(script), calendar="XNYS").run()
    crypto = Engine(feed=feed, strategy=Scripted(script), calendar="24/7").run()
    plain = Engine(feed=feed, strategy=Scripted(script)).run()
    assert nyse.config["periods_per_year"] == 252.0
    assert crypto.config["periods_per_year"] == 366.0
    assert plain.config["periods_per_year"] == 252.0
    ratio = crypto["annual_volatility"] / nyse["annual_volatility"]
    assert ratio == pytest.approx((366 / 252) ** 0.5)


def test_unknown_calendar_raises_config_error_with_a_fix() -> None:
    with pytest.raises(ConfigError, match="Fix"):
        Sessions("NOPE").session_end_ns(int(MON.timestamp() * 1e9))


def test_session_end_of_a_daily_bar_at_the_close_is_that_close() -> None:
    close = datetime(2024, 3, 4, 21, tzinfo=UTC)
    ns = int(close.timestamp()) * 10**9
    assert Sessions("XNYS").session_end_ns(ns) == ns + 1
    assert (
        Sessions("24/7").session_end_ns(ns)
        == int(datetime(2024, 3, 5, tzinfo=UTC).timestamp()) * 10**9
    )
