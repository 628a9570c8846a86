"""``runtime.intake`` and the runtime's batch path when a decoder hands over one list of asset
ids frame after frame (``stream.codec`` does, while a stream's universe repeats): what is
remembered about that list never lets in, or orders, anything it would not otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import structlog
from structlog.testing import capture_logs

from tests.conftest import Messages, day
from tradeloop import PaperBroker, Strategy
from tradeloop.clock import utc_ns
from tradeloop.events import BarBatchMessage, Message, TimestampBatch
from tradeloop.runtime.intake import Intake, IntakeLimits
from tradeloop.runtime.live import LiveRuntime


def test_intake_lets_a_list_in_again_but_still_refuses_a_new_asset() -> None:
    intake = Intake(IntakeLimits(universe=frozenset("ABC")), structlog.get_logger())
    usual = ["A", "B", "C"]
    with capture_logs() as logs:
        assert intake.kept(usual, 1) is None
        assert intake.kept(usual, 2) is None
        assert intake.kept(["A", "X", "C"], 3) == [0, 2]
        assert intake.kept(usual, 4) is None
        assert intake.kept(["X", "A"], 5) == [1]
    assert intake.unknown_assets == 2
    assert [(e["event"], e["asset"]) for e in logs] == [("unknown_asset_dropped", "X")] * 2


class Recorder(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list[str], list[float]]] = []

    def on_timestamp_batch(self, batch: TimestampBatch, context: Any) -> None:
        self.seen.append((batch.asset_ids, batch.close.tolist()))


async def test_runtime_orders_one_unsorted_list_by_name_at_every_timestamp() -> None:
    shared = ["C", "A", "B"]  # one list object, as the decoder hands it over
    messages: list[Message] = []
    for d in range(3):
        close = np.array([30.0, 10.0, 20.0]) + d  # C, A, B
        messages.append(
            BarBatchMessage(utc_ns(day(d)), shared, close, close, close, close, close * 0 + 1)
        )
    close = np.array([11.0, 99.0])
    messages.append(BarBatchMessage(utc_ns(day(3)), ["B", "A"], close, close, close, close, close))
    strategy = Recorder()
    runtime = LiveRuntime(Messages(messages), strategy, PaperBroker(1_000.0))
    await runtime.run()
    assert strategy.seen == [
        (["A", "B", "C"], [10.0, 20.0, 30.0]),
        (["A", "B", "C"], [11.0, 21.0, 31.0]),
        (["A", "B", "C"], [12.0, 22.0, 32.0]),
        (["A", "B"], [99.0, 11.0]),
    ]
    assert shared == ["C", "A", "B"]  # never sorted in place
