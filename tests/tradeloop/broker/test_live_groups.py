"""LiveBroker with order groups and the new order kinds, against the in-process venue of
``test_live_broker``: emulated (working orders out, children when the parent's fill comes
in, a sibling's cancel when a leg fills) and native (one request carrying the group)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tradeloop.fake_venue import FakeVenue, cid
from tradeloop.broker.live import LiveBroker
from tradeloop.broker.orders import OrderRequest
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrderState


class RecordingVenue(FakeVenue):
    """The in-process venue (it keeps every request as sent in ``requests``), with
    ``native_order_classes`` as given."""

    def __init__(self, native: tuple[str, ...] = ()) -> None:
        super().__init__(cash=100_000.0)
        if native:
            self.native_order_classes = frozenset(native)


def bracket_legs() -> tuple[OrderRequest, list[OrderRequest]]:
    entry = OrderRequest("X", Side.BUY, 10)
    stop = OrderRequest("X", Side.SELL, 10, OrderType.STOP, stop_price=95.0, reduce_only=True)
    target = OrderRequest("X", Side.SELL, 10, OrderType.LIMIT, limit_price=110.0, reduce_only=True)
    return entry, [stop, target]


def live(venue: Any) -> LiveBroker:
    broker = LiveBroker(venue, 100_000.0, client_id=cid)
    broker.marks["X"] = 100.0
    return broker


async def test_emulated_bracket_sends_exits_after_the_entry_fill_and_cancels_the_sibling() -> None:
    venue = RecordingVenue()
    broker = live(venue)
    entry, legs = bracket_legs()
    group = broker.submit_group(entry, legs, oco=True)
    await broker.send()
    assert venue.submitted == ["cid1"]  # the exits are held until the entry fills
    broker.apply(venue.fill("cid1", "t1", 10, 100.0, 0.0))
    await broker.send()
    assert venue.submitted == ["cid1", "cid2", "cid3"]
    assert [r.order_class for r in venue.requests] == ["simple"] * 3
    broker.apply(venue.fill("cid3", "t2", 10, 110.0, 0.0))  # the target fills
    await broker.send()
    assert venue.cancelled == ["cid2"]  # the runtime cancels the stop at the venue
    assert [o.status for o in group.orders] == [
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.FILLED,
    ]
    assert broker.position("X") == 0


async def test_native_bracket_goes_as_one_request_with_both_levels_and_leg_ids() -> None:
    venue = RecordingVenue(native=("bracket", "oco"))
    broker = live(venue)
    entry, legs = bracket_legs()
    group = broker.submit_group(entry, legs, oco=True)
    await broker.send()
    (request,) = venue.requests
    assert request.order_class == "bracket"
    assert (request.stop_loss_stop, request.take_profit_limit) == (95.0, 110.0)
    assert request.leg_client_order_ids == ("cid2", "cid3")
    # the venue triggers and cancels the legs: their fills come back under the leg ids
    broker.apply(venue.fill("cid1", "t1", 10, 100.0, 0.0))
    venue.book["cid3"] = VenueOrderState("cid3", "v9", "X", Side.SELL, 10, OrderStatus.ACCEPTED)
    broker.apply(venue.fill("cid3", "t2", 10, 110.0, 0.0))
    await broker.send()
    assert len(venue.requests) == 1  # nothing sent twice
    assert venue.cancelled == []
    assert group.legs[0].status is OrderStatus.CANCELLED
    assert "cancelled by the venue" in group.legs[0].message
    assert broker.position("X") == 0


async def test_native_group_with_levels_from_the_fill_is_emulated() -> None:
    venue = RecordingVenue(native=("bracket",))
    broker = live(venue)
    entry = OrderRequest("X", Side.BUY, 10)
    stop = OrderRequest("X", Side.SELL, 10, OrderType.STOP, reduce_only=True, from_fill=-0.05)
    target = OrderRequest("X", Side.SELL, 10, OrderType.LIMIT, reduce_only=True, from_fill=0.1)
    broker.submit_group(entry, [stop, target], oco=True)
    await broker.send()
    broker.apply(venue.fill("cid1", "t1", 10, 100.0, 0.0))
    await broker.send()
    assert [r.order_class for r in venue.requests] == ["simple"] * 3
    assert venue.requests[1].stop_price == pytest.approx(95.0)
    assert venue.requests[2].limit_price == pytest.approx(110.0)


async def test_trailing_stop_and_good_till_date_travel_in_the_request() -> None:
    venue = RecordingVenue()
    broker = live(venue)
    broker.book.portfolio.positions.clear()
    broker.submit_request(
        OrderRequest("X", Side.BUY, 5, OrderType.TRAILING_STOP, trail_percent=0.03)
    )
    broker.submit_request(
        OrderRequest(
            "X", Side.BUY, 5, OrderType.LIMIT, limit_price=90.0, tif=TimeInForce.GTD,
            expire_at_ns=1_800_000_000 * 10**9,
        )
    )  # fmt: skip
    await broker.send()
    trailing, gtd = venue.requests
    assert (trailing.order_type, trailing.trail_percent) == (OrderType.TRAILING_STOP, 0.03)
    assert trailing.stop_price == 103.0  # the first level from the mark 100, as the simulator
    assert (gtd.tif, gtd.expire_at_ns) == (TimeInForce.GTD, 1_800_000_000 * 10**9)
