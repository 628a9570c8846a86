"""Binance wire shapes, as the docs show them: typed views of the decoded JSON.

Prices and quantities travel as decimal strings; ids and times as integers (ms).
Only the fields the codec reads are typed; Binance sends more.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "AccountPayload",
    "BalancePayload",
    "CombinedFrame",
    "ErrorPayload",
    "ExchangeInfoPayload",
    "ExecutionReport",
    "KlineEvent",
    "KlinePayload",
    "KlineRow",
    "OrderFill",
    "OrderPayload",
    "ServerShutdownEvent",
    "ServerTimePayload",
    "SymbolFilter",
    "SymbolInfo",
    "TickerPricePayload",
    "TradePayload",
    "WsApiEventFrame",
    "WsApiResponse",
]


class KlinePayload(TypedDict):
    """``k`` of a kline event."""

    t: int  # open time (ms)
    T: int  # close time (ms)
    s: str
    i: str
    o: str
    h: str
    l: str  # noqa: E741 (Binance's field name)
    c: str
    v: str
    n: int
    x: bool  # is this kline closed?


class KlineEvent(TypedDict):
    e: Literal["kline"]
    E: int
    s: str
    k: KlinePayload


class ServerShutdownEvent(TypedDict):
    e: Literal["serverShutdown"]
    E: int


class CombinedFrame(TypedDict):
    """A combined-stream frame: ``/stream?streams=a/b`` wraps every event."""

    stream: str
    data: KlineEvent


# GET /api/v3/klines row: [open time, open, high, low, close, volume, close time,
# quote volume, trades, taker buy base, taker buy quote, ignore]
KlineRow = list[int | str]


class ServerTimePayload(TypedDict):
    serverTime: int


class ErrorPayload(TypedDict):
    code: int
    msg: str


class OrderPayload(TypedDict, total=False):
    """POST/GET/DELETE /api/v3/order, GET /api/v3/openOrders rows."""

    symbol: str
    orderId: int
    clientOrderId: str
    origClientOrderId: str  # DELETE only: ``clientOrderId`` is then the cancel's own id
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str  # (sic)
    status: str
    timeInForce: str
    type: str
    side: str
    stopPrice: str
    transactTime: int
    time: int
    updateTime: int


class TradePayload(TypedDict):
    """GET /api/v3/myTrades row (no client order id: map ``orderId``)."""

    symbol: str
    id: int
    orderId: int
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool


class BalancePayload(TypedDict):
    asset: str
    free: str
    locked: str


class AccountPayload(TypedDict, total=False):
    """GET /api/v3/account."""

    canTrade: bool
    updateTime: int
    accountType: str
    balances: list[BalancePayload]


class ExecutionReport(TypedDict, total=False):
    """User-data ``executionReport`` (order update)."""

    e: Literal["executionReport"]
    E: int
    s: str
    c: str  # client order id (the cancel's id on x=CANCELED; then C is the original)
    C: str
    S: str
    o: str
    q: str
    p: str
    x: str  # execution type: NEW, TRADE, CANCELED, EXPIRED, REJECTED, ...
    X: str  # order status
    r: str
    i: int
    l: str  # noqa: E741 (Binance's field name) last executed quantity
    z: str
    L: str
    n: str
    N: str | None
    T: int
    t: int


class WsApiResponse(TypedDict, total=False):
    """A WebSocket API answer: ``{"id", "status", "result" | "error", "rateLimits"}``."""

    id: str
    status: int
    result: dict[str, int]
    error: ErrorPayload


class WsApiEventFrame(TypedDict):
    """A user-data event on the WebSocket API: ``{"subscriptionId": 0, "event": {...}}``."""

    subscriptionId: int
    event: ExecutionReport


class SymbolFilter(TypedDict, total=False):
    """One of a symbol's ``filters`` (the ones ``rules`` reads); amounts are decimal strings,
    ``"0.00000000"`` turns a bound off."""

    filterType: str  # PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL, MIN_NOTIONAL, ...
    minPrice: str
    maxPrice: str
    tickSize: str
    minQty: str
    maxQty: str
    stepSize: str
    minNotional: str
    maxNotional: str
    applyMinToMarket: bool
    applyMaxToMarket: bool
    applyToMarket: bool  # MIN_NOTIONAL
    avgPriceMins: int


class SymbolInfo(TypedDict, total=False):
    symbol: str
    status: str
    baseAsset: str
    baseAssetPrecision: int
    quoteAsset: str
    quotePrecision: int
    filters: list[SymbolFilter]


class ExchangeInfoPayload(TypedDict, total=False):
    """GET /api/v3/exchangeInfo?symbols=[...]."""

    timezone: str
    serverTime: int
    symbols: list[SymbolInfo]


class TickerPricePayload(TypedDict):
    """GET /api/v3/ticker/price?symbol=BNBUSDT (a fee asset's price in the quote asset)."""

    symbol: str
    price: str


class OrderFill(TypedDict):
    """A ``fills`` row of a FULL new-order answer."""

    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int
