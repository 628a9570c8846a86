"""``stream.supervisor``'s memory of what went out: a backfill's overlap with what was
delivered is dropped, bar by bar and batch by batch, whichever shape each came in."""

from __future__ import annotations

import numpy as np

from tradeloop.events import BarBatchMessage, BarMessage
from tradeloop.stream.supervisor import _Delivered


def batch(ts_ns: int, assets: list[str]) -> BarBatchMessage:
    price = np.ones(len(assets))
    return BarBatchMessage(ts_ns, assets, price, price, price, price, price)


def bar(ts_ns: int, asset: str) -> BarMessage:
    return BarMessage(asset, ts_ns, 1.0, 1.0, 1.0, 1.0, 1.0)


def test_delivered_drops_repeats_of_a_batch_and_keeps_what_is_new() -> None:
    delivered = _Delivered(keep=2)
    usual = ["A", "B"]
    assert delivered.fresh(batch(1, usual))
    assert not delivered.fresh(batch(1, usual))  # the same timestamp again (a backfill)
    assert delivered.fresh(batch(1, ["B", "C"]))  # C is new
    assert not delivered.fresh(batch(1, ["C", "A"]))
    assert not delivered.fresh(bar(1, "B"))
    assert delivered.fresh(bar(1, "D"))
    assert not delivered.fresh(bar(1, "D"))
    assert usual == ["A", "B"]  # the batch's own list is remembered, never changed


def test_delivered_single_bars_then_a_batch_over_them_is_fresh_only_for_new_assets() -> None:
    delivered = _Delivered()
    assert delivered.fresh(bar(5, "A"))
    assert delivered.fresh(bar(5, "B"))
    assert not delivered.fresh(batch(5, ["B", "A"]))
    assert delivered.fresh(batch(5, ["A", "C"]))


def test_delivered_forgets_the_oldest_times_and_refuses_an_empty_batch() -> None:
    delivered = _Delivered(keep=2)
    for ts_ns in (1, 2, 3):
        assert delivered.fresh(batch(ts_ns, ["A"]))
    assert not delivered.fresh(batch(3, ["A"]))
    assert delivered.fresh(batch(1, ["A"]))  # time 1 was forgotten once 3 came
    assert not delivered.fresh(batch(9, []))  # nothing in it to deliver
