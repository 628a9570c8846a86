"""Metric formats: counts are whole, durations read in days (or hours), NaN reads n/a."""

from __future__ import annotations

import math

import pytest

from tradeloop.results.display import METRIC_LABELS, format_metric


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("max_drawdown_duration_days", 351.0, "351 days"),
        ("max_drawdown_duration_days", 350.6, "351 days"),
        ("max_drawdown_duration_days", 1.2, "1 day"),
        ("max_drawdown_duration_days", 0.25, "6.0 hours"),
        ("max_drawdown_duration_days", 10 / 1440, "10 minutes"),
        ("n_trades", 1234, "1,234"),
        ("total_return", 0.1234, "12.34%"),
        ("realized_pnl", 1234.5, "1,234.50"),
        ("sharpe", math.nan, "n/a"),
    ],
)
def test_format_metric_reads_as_a_person_says_it(key: str, value: float, text: str) -> None:
    assert format_metric(key, value) == text


def test_pnl_labels_say_whether_commission_is_in() -> None:
    assert METRIC_LABELS["realized_pnl"] == "Realized P&L (before commission)"
    assert METRIC_LABELS["avg_trade_pnl"] == "Avg trade P&L (net of commission)"
