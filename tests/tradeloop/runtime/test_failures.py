"""Which strategy callback raised: read from the traceback, not guessed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bars
from tradeloop import Engine, Strategy
from tradeloop.errors import OrderError, StrategyError
from tradeloop.runtime.failures import strategy_error


class Raises(Strategy):
    def __init__(self, on_day: int, error: Exception) -> None:
        super().__init__()
        self.on_day, self.error, self.seen = on_day, error, 0

    def on_market_event(self, ev: Any, ctx: Any) -> None:  # not the base class's names
        if ev.asset_id == "B":
            self.seen += 1
            if self.seen == self.on_day:
                self._deeper()

    def _deeper(self) -> None:  # the strategy's own helper: the callback is still named
        raise self.error


class BadOrder(Strategy):
    def on_timestamp_batch(self, batch: Any, context: Any) -> None:
        self.buy(batch.asset_ids[0], -5)  # tradeloop refuses it: still the strategy's doing


FRAME = bars([(d, a, 10, 11, 9, 10) for d in range(4) for a in ("A", "B")])


def _raised(strategy: Strategy) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 (any exception: we inspect it)
        Engine(FRAME, strategy).run()
    return caught.value


def test_strategy_error_names_the_callback_and_the_asset_of_its_argument() -> None:
    strategy = Raises(2, ZeroDivisionError("boom"))
    raised = _raised(strategy)
    assert isinstance(raised, ZeroDivisionError)  # a backtest raises the strategy's own
    err = strategy_error(raised, strategy, 1_704_229_200 * 10**9)
    assert isinstance(err, StrategyError)
    assert (err.callback, err.asset_id, err.ts_ns) == (
        "on_market_event",
        "B",
        1_704_229_200 * 10**9,
    )
    assert str(err).startswith(
        "Raises.on_market_event raised ZeroDivisionError: boom (at 2024-01-02T21:00:00+00:00 "
        "for asset B). Fix:"
    )


def test_strategy_error_covers_tradeloop_errors_a_callback_caused() -> None:
    strategy = BadOrder()
    raised = _raised(strategy)
    assert isinstance(raised, OrderError)
    err = strategy_error(raised, strategy, None)
    assert err is not None
    assert (err.callback, err.asset_id) == ("on_timestamp_batch", None)
    assert "(at start)" in str(err)


def test_strategy_error_is_none_without_a_strategy_frame() -> None:
    with pytest.raises(RuntimeError) as caught:
        raise RuntimeError("tradeloop's own bug")
    assert strategy_error(caught.value, BadOrder(), 1) is None
    other = Raises(1, ValueError("x"))
    assert strategy_error(_raised(other), Raises(1, ValueError("x")), 1) is None  # not its
