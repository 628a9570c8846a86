"""match_price: where one bar fills one order, worked by hand for every type and gap."""

from __future__ import annotations

import pytest

from tradeloop.broker.orders import Order, match_price
from tradeloop.events import OrderType, Side, TimeInForce

# The bar used throughout unless a case says otherwise: open 100, high 105, low 95, close 100.
BAR = (100.0, 105.0, 95.0, 100.0)
# The same range closing high (104) or low (96): where the close lies decides a stop-limit.
CLOSE_HIGH = (100.0, 105.0, 95.0, 104.0)
CLOSE_LOW = (100.0, 105.0, 95.0, 96.0)


def order(
    side: Side, kind: OrderType, limit: float | None = None, stop: float | None = None
) -> Order:
    return Order(1, "X", side, 10, kind, limit, stop, TimeInForce.GTC, 0, "test")


@pytest.mark.parametrize(
    ("side", "kind", "limit", "stop", "bar", "expected"),
    [
        # market: always the open
        (Side.BUY, OrderType.MARKET, None, None, BAR, 100.0),
        (Side.SELL, OrderType.MARKET, None, None, BAR, 100.0),
        # buy limit 97: open 100 above it, low 95 reaches it -> the limit
        (Side.BUY, OrderType.LIMIT, 97.0, None, BAR, 97.0),
        # buy limit 102: the open is already better -> the open
        (Side.BUY, OrderType.LIMIT, 102.0, None, BAR, 100.0),
        # buy limit 94: the low 95 never reaches it -> no fill
        (Side.BUY, OrderType.LIMIT, 94.0, None, BAR, None),
        # sell limit 103: high 105 reaches it -> the limit; 99: open better -> open; 106: none
        (Side.SELL, OrderType.LIMIT, 103.0, None, BAR, 103.0),
        (Side.SELL, OrderType.LIMIT, 99.0, None, BAR, 100.0),
        (Side.SELL, OrderType.LIMIT, 106.0, None, BAR, None),
        # buy stop 103: high reaches it intrabar -> the stop; 98: open gapped through -> open
        (Side.BUY, OrderType.STOP, None, 103.0, BAR, 103.0),
        (Side.BUY, OrderType.STOP, None, 98.0, BAR, 100.0),
        (Side.BUY, OrderType.STOP, None, 106.0, BAR, None),
        # sell stop 97: low reaches it -> the stop; 101: gap down through -> open; 94: none
        (Side.SELL, OrderType.STOP, None, 97.0, BAR, 97.0),
        (Side.SELL, OrderType.STOP, None, 101.0, BAR, 100.0),
        (Side.SELL, OrderType.STOP, None, 94.0, BAR, None),
        # buy stop-limit stop 103 limit 104: triggered intrabar, stop within limit -> the stop
        (Side.BUY, OrderType.STOP_LIMIT, 104.0, 103.0, BAR, 103.0),
        # buy stop-limit stop 103 limit 102: triggered intrabar at 103; closing at 104 the bar
        # cannot show a return to 102 after the trigger (the low 95 may have come first) -> no
        # fill this bar
        (Side.BUY, OrderType.STOP_LIMIT, 102.0, 103.0, CLOSE_HIGH, None),
        # ... but closing at 100 (<= 102) it certainly fell through 102 after touching 103 ->
        # the limit, on this bar
        (Side.BUY, OrderType.STOP_LIMIT, 102.0, 103.0, BAR, 102.0),
        # a close exactly at the limit counts: the price reached it after the trigger
        (Side.BUY, OrderType.STOP_LIMIT, 102.0, 103.0, (100.0, 105.0, 95.0, 102.0), 102.0),
        # buy stop-limit stop 98 limit 99: triggered at the open (100 >= 98), then a limit
        # 99 on the whole bar: low 95 reaches it -> 99
        (Side.BUY, OrderType.STOP_LIMIT, 99.0, 98.0, BAR, 99.0),
        # sell stop-limit stop 97 limit 96: triggered intrabar, stop 97 >= limit 96 -> 97
        (Side.SELL, OrderType.STOP_LIMIT, 96.0, 97.0, BAR, 97.0),
        # sell stop-limit stop 97 limit 98: triggered at 97, below the limit; a close of 100
        # (>= 98) proves a rise through 98 after the trigger -> 98; a close of 96 does not
        (Side.SELL, OrderType.STOP_LIMIT, 98.0, 97.0, BAR, 98.0),
        (Side.SELL, OrderType.STOP_LIMIT, 98.0, 97.0, CLOSE_LOW, None),
        # the close never matters once the stop is within the limit: buy stop 103 limit 104
        # closing at 96 still fills at the stop
        (Side.BUY, OrderType.STOP_LIMIT, 104.0, 103.0, CLOSE_LOW, 103.0),
        # sell stop-limit stop 101 limit 102: gap down through the stop at the open 100,
        # then a sell limit 102 on the bar: high 105 reaches it -> 102
        (Side.SELL, OrderType.STOP_LIMIT, 102.0, 101.0, BAR, 102.0),
    ],
)
def test_match_price_each_order_type_fills_where_worked_by_hand(
    side: Side,
    kind: OrderType,
    limit: float | None,
    stop: float | None,
    bar: tuple[float, float, float, float],
    expected: float | None,
) -> None:
    price, _ = match_price(order(side, kind, limit, stop), *bar)
    assert price == expected


def test_match_price_triggered_stop_limit_rests_as_limit_on_later_bars() -> None:
    pending = order(Side.BUY, OrderType.STOP_LIMIT, limit=102.0, stop=103.0)
    price, pending.triggered = match_price(pending, *CLOSE_HIGH)
    assert (price, pending.triggered) == (None, True)
    # next bar opens 104 and never trades below 103: a resting limit 102 does not fill
    assert match_price(pending, 104.0, 106.0, 103.0, 105.0) == (None, True)
    # a bar that trades down to 101 fills the limit at 102, even though the stop is not hit again
    assert match_price(pending, 103.5, 104.0, 101.0, 103.0) == (102.0, True)


def test_match_price_untriggered_stop_limit_stays_untriggered() -> None:
    assert match_price(order(Side.BUY, OrderType.STOP_LIMIT, 110.0, 108.0), *BAR) == (None, False)
