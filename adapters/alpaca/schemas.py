"""Alpaca's wire shapes, as the docs show them (typed for the codec; decoded at the boundary).

Market data stream (``wss://stream.data.alpaca.markets/v2/{iex|sip}``): every frame is a JSON
array of objects tagged by ``"T"``; control messages arrive alone, data may be batched.
Trading REST (``/v2/orders``, ``/v2/positions``, ``/v2/account``, account activities) and the
``trade_updates`` stream carry numbers as strings.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "AccountJSON",
    "AssetJSON",
    "BarJSON",
    "BarsPageJSON",
    "ControlJSON",
    "ErrorJSON",
    "FeeActivityJSON",
    "FillActivityJSON",
    "OrderJSON",
    "OrderRequestJSON",
    "PositionJSON",
    "RestBarJSON",
    "StopLossJSON",
    "SubscriptionJSON",
    "TakeProfitJSON",
    "TradeStreamErrorJSON",
    "TradeUpdateJSON",
    "TradeUpdatesFrameJSON",
]


class BarJSON(TypedDict):
    """``{"T":"b"|"u","S":"SPY","o":..,"h":..,"l":..,"c":..,"v":..,"t":"<bar start>",..}``"""

    T: Literal["b", "u", "d"]
    S: str
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's field name
    c: float
    v: float
    t: str
    n: NotRequired[int]
    vw: NotRequired[float]


class ControlJSON(TypedDict):
    """``{"T":"success","msg":"connected"|"authenticated"}``"""

    T: Literal["success"]
    msg: str


class ErrorJSON(TypedDict):
    """``{"T":"error","code":406,"msg":"connection limit exceeded"}``"""

    T: Literal["error"]
    code: int
    msg: str


class SubscriptionJSON(TypedDict, total=False):
    """``{"T":"subscription","trades":[],"quotes":[],"bars":["AAPL"],"updatedBars":["AAPL"]}``"""

    T: Literal["subscription"]
    trades: list[str]
    quotes: list[str]
    bars: list[str]
    updatedBars: list[str]
    dailyBars: list[str]


class RestBarJSON(TypedDict):
    """One bar of ``GET /v2/stocks/bars`` (no ``T``/``S``: grouped under the symbol)."""

    t: str
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's field name
    c: float
    v: float
    n: NotRequired[int]
    vw: NotRequired[float]


class BarsPageJSON(TypedDict):
    """``{"bars": {"AAPL": [...], "SPY": [...]}, "next_page_token": "..." | null}``"""

    bars: dict[str, list[RestBarJSON]] | None
    next_page_token: str | None


class TakeProfitJSON(TypedDict):
    """An order class's ``take_profit`` leg: ``{"limit_price": "110"}``."""

    limit_price: str


class StopLossJSON(TypedDict):
    """An order class's ``stop_loss`` leg: a stop, or a stop-limit with ``limit_price``."""

    stop_price: str
    limit_price: NotRequired[str]


class OrderRequestJSON(TypedDict):
    """The body of ``POST /v2/orders`` (numbers as decimal strings)."""

    symbol: str
    qty: str
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
    time_in_force: Literal["day", "gtc"]
    client_order_id: str
    limit_price: NotRequired[str]
    stop_price: NotRequired[str]
    trail_percent: NotRequired[str]  # in percent: "3" is 3 %
    trail_price: NotRequired[str]
    order_class: NotRequired[Literal["simple", "bracket", "oco", "oto"]]
    take_profit: NotRequired[TakeProfitJSON]
    stop_loss: NotRequired[StopLossJSON]


class OrderJSON(TypedDict):
    """An order as ``/v2/orders`` returns it (the fields the adapter reads)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: str | None
    filled_qty: str
    filled_avg_price: str | None
    status: str
    limit_price: NotRequired[str | None]
    stop_price: NotRequired[str | None]
    created_at: NotRequired[str]
    updated_at: NotRequired[str]
    replaced_by: NotRequired[str | None]


class PositionJSON(TypedDict):
    """``GET /v2/positions`` entry: ``qty`` is negative for a short (``side``: short)."""

    symbol: str
    qty: str
    side: Literal["long", "short"]
    avg_entry_price: NotRequired[str]


class AccountJSON(TypedDict):
    """``GET /v2/account`` (the fields the adapter reads)."""

    id: str
    cash: str
    status: NotRequired[str]
    currency: NotRequired[str]


class TradeUpdateJSON(TypedDict):
    """``data`` of a trade_updates frame; ``price``/``qty``/``execution_id`` on fills only."""

    event: str
    order: OrderJSON
    timestamp: NotRequired[str]
    execution_id: NotRequired[str]
    price: NotRequired[str]
    qty: NotRequired[str]
    position_qty: NotRequired[str]


class TradeUpdatesFrameJSON(TypedDict):
    """``{"stream":"trade_updates"|"authorization"|"listening","data":{...}}``"""

    stream: str
    data: dict[str, object]


class FillActivityJSON(TypedDict):
    """``GET /v2/account/activities/FILL`` entry."""

    id: str
    activity_type: Literal["FILL"]
    transaction_time: str
    type: Literal["fill", "partial_fill"]
    price: str
    qty: str
    side: str
    symbol: str
    order_id: str
    cum_qty: str
    leaves_qty: str
    order_status: NotRequired[str]


class AssetJSON(TypedDict):
    """``GET /v2/assets/{symbol}`` (the fields the rules read; crypto adds the increments)."""

    symbol: str
    status: Literal["active", "inactive"]
    tradable: bool
    fractionable: bool
    min_order_size: NotRequired[str]
    min_trade_increment: NotRequired[str]
    price_increment: NotRequired[str]


class FeeActivityJSON(TypedDict):
    """A FEE/CFEE non-trade activity: ``net_amount`` signed as cash moves (a fee < 0)."""

    id: str
    activity_type: Literal["FEE", "CFEE"]
    date: str
    net_amount: str
    description: NotRequired[str]
    symbol: NotRequired[str]
    status: NotRequired[str]


class TradeStreamErrorJSON(TypedDict):
    """``{"action":"error","data":{"error_message":"..."}}``, sent before the server closes."""

    action: Literal["error"]
    data: dict[str, str]
