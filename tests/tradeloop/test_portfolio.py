"""Portfolio accounting: average price, realised P&L, flips, commission — by hand."""

from __future__ import annotations

import pytest

from tradeloop.portfolio import Portfolio


def test_portfolio_adding_to_a_long_averages_the_price() -> None:
    book = Portfolio(10_000)
    book.apply_fill("X", 10, 100.0, 1.0, 0)
    book.apply_fill("X", 10, 110.0, 1.0, 1)
    position = book.positions["X"]
    assert (position.qty, position.avg_price) == (20, 105.0)
    assert book.cash == pytest.approx(10_000 - 1_000 - 1_100 - 2)
    assert book.commission_paid == 2.0


def test_portfolio_reducing_realises_pnl_and_keeps_average() -> None:
    book = Portfolio(10_000)
    book.apply_fill("X", 20, 105.0, 0.0, 0)
    realised = book.apply_fill("X", -5, 120.0, 0.0, 1)
    assert realised == pytest.approx(5 * 15.0)
    assert book.positions["X"].avg_price == 105.0
    assert book.positions["X"].qty == 15


def test_portfolio_crossing_zero_realises_old_side_and_opens_new_at_fill() -> None:
    book = Portfolio(10_000)
    book.apply_fill("X", 15, 105.0, 0.0, 0)
    realised = book.apply_fill("X", -20, 100.0, 0.0, 7)  # close 15 at -5 each, short 5 at 100
    assert realised == pytest.approx(-75.0)
    position = book.positions["X"]
    assert (position.qty, position.avg_price, position.opened_ts_ns) == (-5, 100.0, 7)
    # cash: -1575 for the buy, +2000 for the sale
    assert book.cash == pytest.approx(10_000 - 1_575 + 2_000)


def test_portfolio_short_cover_realises_gain_when_price_fell() -> None:
    book = Portfolio(1_000)
    book.apply_fill("X", -10, 50.0, 0.0, 0)
    assert book.cash == 1_500
    assert book.apply_fill("X", 10, 40.0, 0.0, 1) == pytest.approx(100.0)
    assert "X" not in book.positions
    assert book.cash == pytest.approx(1_100)
    assert book.realized_pnl == pytest.approx(100.0)


def test_portfolio_fractional_dust_closes_the_position() -> None:
    book = Portfolio(1_000)
    book.apply_fill("X", 0.1 + 0.2, 10.0, 0.0, 0)
    book.apply_fill("X", -0.3, 10.0, 0.0, 1)
    assert "X" not in book.positions


def test_portfolio_a_dust_sized_fill_from_flat_pays_its_cash_and_leaves_it_flat() -> None:
    # 5e-10 units is below the dust threshold (1e-9): the position snaps to flat. It used to
    # divide by that zero for the average price; its cash and commission are still booked
    book = Portfolio(1_000)
    realised = book.apply_fill("X", 5e-10, 100.0, 0.25, 7)
    assert realised == 0.0
    assert "X" not in book.positions
    assert book.cash == 1_000 - (5e-10 * 100.0 + 0.25)  # the rule: cash -= qty × price + fee
    assert book.commission_paid == 0.25
    book.apply_fill("X", 2, 50.0, 0.0, 8)  # and the next fill opens from flat as usual
    assert (book.positions["X"].qty, book.positions["X"].avg_price) == (2, 50.0)
    assert book.positions["X"].opened_ts_ns == 8
