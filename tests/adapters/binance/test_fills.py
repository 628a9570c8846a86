"""executionReports and myTrades rows → fills, fees by the asset Binance took them in, order
updates that close an order without a fill, and the account snapshot (recorded payloads)."""

from __future__ import annotations

import pytest
from adapters.binance.fills import (
    order_update_from_report,
    snapshot_from,
    trade_from_report,
    trade_from_row,
)
from adapters.binance.orders import ClientIds

from tests.adapters.binance.recorded import payload
from tradeloop.events import OrderStatus, Side


def report(**changes: object) -> dict[str, object]:
    event: dict[str, object] = payload("ws_api_execution_report.json")["event"]
    event.update(changes)
    return event


def test_trade_from_report_is_one_fill_net_of_a_fee_in_the_base_asset() -> None:
    trade = trade_from_report(report(), ClientIds(), "USDT", "BTC", None)
    assert trade is not None
    fill = trade.execution
    assert (fill.trade_id, fill.client_order_id, fill.side) == (
        "BTCUSDT:12345",
        "mUvoqJxFIILMdfAW5iGSOW",
        Side.BUY,
    )
    # the fee, 0.0004 BTC, was taken from the 0.4 BTC bought: the account got 0.3996 BTC and
    # paid 0.4 × 0.1026441 USDT, which the book shows as 0.3996 at the price + the fee's value
    assert (fill.qty, fill.price, fill.ts_ns) == (
        pytest.approx(0.3996),
        0.1026441,
        1499405658657 * 1_000_000,
    )
    assert fill.commission == pytest.approx(0.0004 * 0.1026441)
    assert fill.qty * fill.price + fill.commission == pytest.approx(0.4 * 0.1026441)
    assert not fill.order_done  # X = PARTIALLY_FILLED
    assert (trade.fee.asset, trade.fee.amount) == ("BTC", 0.0004)


def test_trade_from_report_fee_in_the_quote_is_cash() -> None:
    trade = trade_from_report(report(N="USDT", X="FILLED"), ClientIds(), "USDT", "BTC", None)
    assert trade is not None
    assert (trade.execution.qty, trade.execution.commission, trade.execution.order_done) == (
        0.4,
        0.0004,
        True,
    )


def test_trade_from_report_fee_in_bnb_is_booked_at_its_value_and_named_in_kind() -> None:
    # 0.0004 BNB at 600 USDT/BNB = 0.24 USDT, booked as the commission; the venue took it from
    # BNB, not from USDT, which commission_asset/commission_paid say (reconciliation adds the
    # value back before comparing cash: tradeloop.venue's fee rule)
    trade = trade_from_report(report(N="BNB"), ClientIds(), "USDT", "BTC", 600.0)
    assert trade is not None
    fill = trade.execution
    assert (fill.qty, fill.commission) == (0.4, pytest.approx(0.24))
    assert (fill.commission_asset, fill.commission_paid) == ("BNB", 0.0004)
    assert (trade.fee.asset, trade.fee.amount) == ("BNB", 0.0004)
    assert trade.fee.quote_value == pytest.approx(0.24)
    unpriced = trade_from_report(report(N="BNB"), ClientIds(), "USDT", "BTC", None)
    assert unpriced is not None
    assert unpriced.fee.quote_value is None
    # no price: nothing is booked as cost, the fee is still said in kind
    assert (unpriced.execution.commission, unpriced.execution.commission_asset) == (0.0, "BNB")


@pytest.mark.parametrize("kind", ["NEW", "CANCELED", "EXPIRED", "REJECTED", "TRADE_PREVENTION"])
def test_trade_from_report_non_trade_updates_are_not_fills(kind: str) -> None:
    assert trade_from_report(report(x=kind), ClientIds(), "USDT", "BTC", None) is None


@pytest.mark.parametrize(
    ("kind", "status", "ours"),
    [
        ("EXPIRED", "EXPIRED", OrderStatus.EXPIRED),
        ("TRADE_PREVENTION", "EXPIRED_IN_MATCH", OrderStatus.EXPIRED),
        ("CANCELED", "CANCELED", OrderStatus.CANCELLED),
        ("REJECTED", "REJECTED", OrderStatus.REJECTED),
    ],
)
def test_order_update_from_report_closing_updates(
    kind: str, status: str, ours: OrderStatus
) -> None:
    event = report(x=kind, X=status, z="0.25000000", C="orig-1" if kind == "CANCELED" else "")
    update = order_update_from_report(event, ClientIds())
    assert update is not None
    assert (update.status, update.filled_qty) == (ours, 0.25)
    # a cancel's report carries the cancel request's id in c, the order's in C
    expected = "orig-1" if kind == "CANCELED" else "mUvoqJxFIILMdfAW5iGSOW"
    assert update.client_order_id == expected
    assert kind in update.reason


@pytest.mark.parametrize("kind", ["NEW", "TRADE"])
def test_order_update_from_report_new_and_trades_are_not_updates(kind: str) -> None:
    assert order_update_from_report(report(x=kind), ClientIds()) is None


def test_trade_from_row_uses_trade_id_side_and_given_client_id() -> None:
    row = payload("http_get_my_trades.json")[0]
    trade = trade_from_row(row, "tl-7", "USDT", "BTC", 2.0)
    fill = trade.execution
    assert (fill.trade_id, fill.client_order_id, fill.side, fill.qty) == (
        "BTCUSDT:28457",
        "tl-7",
        Side.BUY,
        12.0,
    )
    # charged 10.1 BNB, worth 10.1 × 2.0 = 20.2 in the quote: booked at that value, and named
    assert (fill.commission, trade.fee.asset, trade.fee.quote_value) == (20.2, "BNB", 20.2)
    assert (fill.commission_asset, fill.commission_paid) == ("BNB", 10.1)


def test_snapshot_cash_is_quote_free_plus_locked_positions_are_base_balances() -> None:
    account = payload("http_get_account.json")
    account["balances"].append({"asset": "USDT", "free": "900.5", "locked": "99.5"})
    snapshot = snapshot_from(
        account, payload("http_get_open_orders.json"), ["BTCUSDT", "ETHUSDT"], "USDT", ClientIds()
    )
    assert snapshot.cash == 1000.0
    assert snapshot.positions == {"BTCUSDT": 4723846.89208129, "ETHUSDT": 0.0}
    assert [o.client_order_id for o in snapshot.open_orders] == ["myOrder1"]
