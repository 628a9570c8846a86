"""Binance order payloads and client ids, against the docs' shapes (recorded payloads)."""

from __future__ import annotations

import re

import pytest
from adapters.binance.orders import ClientIds, order_state, venue_client_id

from tests.adapters.binance.recorded import payload
from tradeloop.events import OrderStatus, Side


def test_venue_client_id_journal_ids_pass_unchanged() -> None:
    journal_id = "tl" + "0123456789abcdef0123456789abcd"  # the journal's shape: tl + 30 hex
    assert venue_client_id(journal_id) == journal_id


@pytest.mark.parametrize(
    "ours", ["a" * 37, "run/1:strategy#2", "ünïcode", "", "x" * 200, "has space"]
)
def test_venue_client_id_maps_others_into_charset_deterministically(ours: str) -> None:
    venue_id = venue_client_id(ours)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,36}", venue_id)
    assert venue_id == venue_client_id(ours)  # a restart sends the same id
    ids = ClientIds()
    assert ids.to_ours(ids.to_venue(ours)) == ours


def test_venue_client_id_distinct_ids_stay_distinct() -> None:
    ids = {venue_client_id(f"order number {n}") for n in range(1000)}
    assert len(ids) == 1000


@pytest.mark.parametrize(
    ("binance", "ours"),
    [
        ("NEW", OrderStatus.ACCEPTED),
        ("PARTIALLY_FILLED", OrderStatus.PARTIALLY_FILLED),
        ("FILLED", OrderStatus.FILLED),
        ("CANCELED", OrderStatus.CANCELLED),
        ("REJECTED", OrderStatus.REJECTED),
        ("EXPIRED", OrderStatus.EXPIRED),
        ("EXPIRED_IN_MATCH", OrderStatus.EXPIRED),
    ],
)
def test_order_state_maps_every_status(binance: str, ours: OrderStatus) -> None:
    order = payload("http_get_order.json")
    order["status"] = binance
    assert order_state(order, ClientIds()).status == ours


def test_order_state_post_answer_has_fill_average() -> None:
    state = order_state(payload("http_post_order.json"), ClientIds())
    # executedQty 10, cummulativeQuoteQty 10 → average 1.0
    assert (state.client_order_id, state.venue_order_id, state.side) == (
        "6gCrw2kRUAF9CvJDGP16IP",
        "28",
        Side.SELL,
    )
    assert (state.qty, state.filled_qty, state.avg_fill_price) == (10.0, 10.0, 1.0)


def test_order_state_cancel_answer_uses_the_original_client_id() -> None:
    state = order_state(payload("http_delete_order.json"), ClientIds())
    assert state.client_order_id == "myOrder1"  # not the cancel's own "cancelMyOrder1"
    assert state.status == OrderStatus.CANCELLED


def test_order_state_ack_answer_is_accepted_with_the_sent_side_and_quantity() -> None:
    # newOrderRespType=ACK answers symbol, orderId, orderListId, clientOrderId, transactTime only
    sent = {"side": "BUY", "quantity": "0.5"}
    state = order_state(payload("http_post_order_ack.json"), ClientIds(), sent=sent)
    assert (state.status, state.side, state.qty, state.filled_qty) == (
        OrderStatus.ACCEPTED,
        Side.BUY,
        0.5,
        0.0,
    )
    assert state.venue_order_id == "28"


def test_order_state_negative_cummulative_quote_qty_gives_no_average_price() -> None:
    # "For some historical orders cummulativeQuoteQty will be < 0, meaning the data is not
    # available at this time" (Query order, All orders): never a negative average price
    order = payload("http_get_order.json")
    order.update(status="FILLED", executedQty="2.0", cummulativeQuoteQty="-1.00000000")
    state = order_state(order, ClientIds())
    assert (state.filled_qty, state.avg_fill_price) == (2.0, 0.0)
    assert "cummulativeQuoteQty < 0" in state.message
