"""The fake Binance's matching engine and rule book: orders, balances, trades, and every refusal
Binance documents for them. Pure (no sockets); ``fake_binance`` serves it over HTTP/WebSocket.

Written from the docs, each check beside its page:

- New order, its mandatory parameters per type and ``newOrderRespType`` (ACK | RESULT | FULL;
  MARKET and LIMIT default to FULL, the rest to ACK):
  https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints#new-order-trade
- Decimal parameters match ``^([0-9]{1,20})(\\.[0-9]{1,20})?$`` (-1100) and carry at most the
  asset's precision (-1111 "Parameter 'quantity' has too much precision."):
  https://developers.binance.com/docs/binance-spot-api-docs/errors#-1111-bad_precision
- Filters (-1013 "Filter failure: LOT_SIZE" ...): PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
  NOTIONAL, MIN_NOTIONAL: https://developers.binance.com/docs/binance-spot-api-docs/filters
- -2010 "Duplicate order sent." (a client order id in use by an OPEN order), "Account has
  insufficient balance for requested action."; -2011 "Unknown order sent." (cancel of an order
  that is not open); -2013 "Order does not exist.":
  https://developers.binance.com/docs/binance-spot-api-docs/errors#other-errors
- Fees: in the asset received unless BNB pays them:
  https://developers.binance.com/docs/binance-spot-api-docs/faqs/commission_faq
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from tests.adapters.binance.recorded import payload

__all__ = ["FakeExchange", "Refusal", "money"]

_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_OPEN = ("NEW", "PARTIALLY_FILLED")
_E8 = Decimal("0.00000001")
_MANDATORY = {  # per type, besides symbol/side/type (New order: "Other info")
    "LIMIT": ("timeInForce", "quantity", "price"),
    "LIMIT_MAKER": ("quantity", "price"),
    "MARKET": ("quantity",),
    "STOP_LOSS": ("quantity",),  # and stopPrice or trailingDelta (checked in place())
    "STOP_LOSS_LIMIT": ("timeInForce", "quantity", "price", "stopPrice"),
}


class Refusal(Exception):  # noqa: N818 (Binance's word for it)
    """An error answer: HTTP ``status`` with ``{"code", "msg"}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status, self.code, self.msg = status, code, msg


def money(value: Decimal) -> str:
    return f"{value.quantize(_E8):f}"


class FakeExchange:
    """Symbols from the recorded exchangeInfo; balances ``asset → [free, locked]``."""

    def __init__(self, clock_ms: Callable[[], int], report: Callable[[dict[str, Any]], None]):
        self.clock_ms, self.report = clock_ms, report
        self.info = payload("http_get_exchange_info.json")
        self.symbols = {row["symbol"]: row for row in self.info["symbols"]}
        self.balances: dict[str, list[Decimal]] = {}
        self.prices: dict[str, Decimal] = {}
        self.orders: dict[tuple[str, str], dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.fee_rate = Decimal("0.001")
        self.fee_asset = "quote"  # "quote", "received" (Binance without BNB), or "BNB"
        self.bnb_fee_rate = Decimal("0.00075")  # 25 % off when BNB pays
        self.market_liquidity: Decimal | None = None  # a MARKET order fills this much, expires
        self._locks: dict[tuple[str, str], Decimal] = {}
        self._next_order_id = 1000
        self._next_trade_id = 5000
        self.after_trade: Callable[[tuple[str, str]], None] | None = None  # order lists' rules

    def set_balances(self, **balances: float | str) -> None:
        self.balances = {a: [Decimal(str(v)), Decimal(0)] for a, v in balances.items()}

    def total(self, asset: str) -> Decimal:
        free, locked = self.balances.get(asset, [Decimal(0), Decimal(0)])
        return free + locked

    # ------------------------------------------------------------ reference data

    def exchange_info(self, p: dict[str, str]) -> dict[str, Any]:
        wanted = orjson.loads(p["symbols"]) if "symbols" in p else None
        if "symbol" in p:
            wanted = [p["symbol"]]
        rows = self.info["symbols"] if wanted is None else [self.symbol(s) for s in wanted]
        return {**self.info, "serverTime": self.clock_ms(), "symbols": rows}

    def symbol(self, symbol: str | None) -> dict[str, Any]:
        if symbol not in self.symbols:
            raise Refusal(400, -1121, "Invalid symbol.")
        return self.symbols[symbol]

    def ticker(self, p: dict[str, str]) -> Any:
        if "symbol" in p:
            self.symbol(p["symbol"])
            return {"symbol": p["symbol"], "price": money(self.prices[p["symbol"]])}
        return [{"symbol": s, "price": money(v)} for s, v in self.prices.items()]

    # ------------------------------------------------------------ orders

    def place(
        self, p: dict[str, str], *, test: bool = False, check_balance: bool = True
    ) -> dict[str, Any]:
        """POST /api/v3/order (and /order/test: checked, never placed); an order list's
        pending order is checked without the balance (it spends only once it is placed)."""
        for name in ("symbol", "side", "type"):
            if not p.get(name):
                raise Refusal(400, -1102, _mandatory(name))
        row = self.symbol(p["symbol"])
        kind = p["type"]
        if kind not in _MANDATORY:
            raise Refusal(400, -1116, "Invalid orderType.")
        if p["side"] not in ("BUY", "SELL"):
            raise Refusal(400, -1117, "Invalid side.")
        for name in _MANDATORY[kind]:
            if not p.get(name):
                raise Refusal(400, -1102, _mandatory(name))
        if kind == "STOP_LOSS" and not (p.get("stopPrice") or p.get("trailingDelta")):
            raise Refusal(400, -1102, _mandatory("stopPrice"))
        if kind in ("MARKET", "STOP_LOSS", "LIMIT_MAKER") and "timeInForce" in p:
            raise Refusal(400, -1106, "Parameter 'timeInForce' sent when not required.")
        if "timeInForce" in p and p["timeInForce"] not in ("GTC", "IOC", "FOK"):
            raise Refusal(400, -1115, "Invalid timeInForce.")
        cid = p.get("newClientOrderId", f"x-{self._next_order_id}")
        if not _CLIENT_ID.match(cid):
            raise Refusal(
                400,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        qty = _amount(p, "quantity", row["baseAssetPrecision"])
        price = _amount(p, "price", row["quotePrecision"]) if "price" in p else None
        stop = _amount(p, "stopPrice", row["quotePrecision"]) if "stopPrice" in p else None
        market_price = self.prices.get(p["symbol"], Decimal(0))
        self._check_filters(row, kind, qty, price, stop, market_price)
        if "trailingDelta" in p:
            # TRAILING_DELTA: https://developers.binance.com/docs/binance-spot-api-docs/filters
            f = {f["filterType"]: f for f in row["filters"]}["TRAILING_DELTA"]
            delta = int(p["trailingDelta"])
            if not f["minTrailingBelowDelta"] <= delta <= f["maxTrailingBelowDelta"]:
                raise Refusal(400, -1013, "Filter failure: TRAILING_DELTA")
        old = self.orders.get((p["symbol"], cid))
        if old is not None and old["status"] in _OPEN:
            raise Refusal(400, -2010, "Duplicate order sent.")
        if check_balance:
            self._check_balance(row, p["side"], qty, price or market_price)
        if test:
            return {}
        order = self._new_order(p, cid, qty, price, stop)
        if "trailingDelta" in p:  # the venue moves its stop (``fake_order_lists.match``)
            order["trailingDelta"] = int(p["trailingDelta"])
        trades: list[dict[str, Any]] = []
        if kind == "MARKET":
            fill_qty = qty if self.market_liquidity is None else min(qty, self.market_liquidity)
            trades.append(self.fill(cid, fill_qty, symbol=p["symbol"]))
            if fill_qty < qty:
                order["status"] = "EXPIRED"
                self._release((p["symbol"], cid))
                self._report(order, "EXPIRED")
        default = "FULL" if kind in ("MARKET", "LIMIT") else "ACK"
        return self._answer(order, p.get("newOrderRespType", default), trades)

    def _check_filters(
        self,
        row: dict[str, Any],
        kind: str,
        qty: Decimal,
        price: Decimal | None,
        stop: Decimal | None,
        market_price: Decimal,
    ) -> None:
        filters = {f["filterType"]: f for f in row["filters"]}
        for value in (price, stop):
            f = filters.get("PRICE_FILTER")
            if value is not None and f is not None and not _within(value, f, "Price", "tick"):
                raise Refusal(400, -1013, "Filter failure: PRICE_FILTER")
        if not _within(qty, filters["LOT_SIZE"], "Qty", "step"):
            raise Refusal(400, -1013, "Filter failure: LOT_SIZE")
        market = filters.get("MARKET_LOT_SIZE")
        if kind == "MARKET" and market is not None and not _within(qty, market, "Qty", "step"):
            raise Refusal(400, -1013, "Filter failure: MARKET_LOT_SIZE")
        # a stop's notional at its stop; a trailing stop's (no stop yet) at the market price
        basis = (price or stop or market_price) if kind != "MARKET" else market_price
        notional = qty * basis
        f = filters.get("NOTIONAL")
        if f is not None:
            low = kind != "MARKET" or f["applyMinToMarket"]
            high = kind != "MARKET" or f["applyMaxToMarket"]
            if (low and notional < Decimal(f["minNotional"])) or (
                high and notional > Decimal(f["maxNotional"])
            ):
                raise Refusal(400, -1013, "Filter failure: NOTIONAL")
        f = filters.get("MIN_NOTIONAL")
        applies = f is not None and (kind != "MARKET" or f["applyToMarket"])
        if applies and notional < Decimal(f["minNotional"]):
            raise Refusal(400, -1013, "Filter failure: MIN_NOTIONAL")

    def _check_balance(self, row: dict[str, Any], side: str, qty: Decimal, price: Decimal) -> None:
        asset, need = (row["quoteAsset"], qty * price) if side == "BUY" else (row["baseAsset"], qty)
        if self.balances.get(asset, [Decimal(0)])[0] < need:
            raise Refusal(400, -2010, "Account has insufficient balance for requested action.")

    def _new_order(
        self,
        p: dict[str, str],
        cid: str,
        qty: Decimal,
        price: Decimal | None,
        stop: Decimal | None,
        *,
        status: str = "NEW",
        lock: bool = True,
        list_id: int = -1,
    ) -> dict[str, Any]:
        """A new order; an order list's pending order is ``PENDING_NEW`` (not on the book,
        no report yet), the second order of an OCO pair locks nothing (the pair locks once)."""
        self._next_order_id += 1
        now = self.clock_ms()
        order = payload("http_get_order.json")
        order.update(
            symbol=p["symbol"],
            orderId=self._next_order_id,
            clientOrderId=cid,
            side=p["side"],
            type=p["type"],
            price=money(price or Decimal(0)),
            origQty=money(qty),
            executedQty=money(Decimal(0)),
            cummulativeQuoteQty=money(Decimal(0)),
            status=status,
            orderListId=list_id,
            timeInForce=p.get("timeInForce", "GTC"),
            stopPrice=money(stop or Decimal(0)),
            time=now,
            updateTime=now,
            workingTime=now,
        )
        key = (p["symbol"], cid)
        self.orders[key] = order
        if status == "NEW":
            self.lock(key, lock)
        return order

    def lock(self, key: tuple[str, str], lock: bool = True) -> None:
        """An order goes on the book: it locks what it may spend (unless ``lock`` is off),
        and its NEW execution report goes out."""
        order = self.orders[key]
        p = {"symbol": order["symbol"], "side": order["side"], "type": order["type"]}
        qty, price = Decimal(order["origQty"]), Decimal(order["price"]) or None
        stop = Decimal(order["stopPrice"]) or None
        if lock and p["type"] != "MARKET":  # a resting order locks what it may spend
            row = self.symbols[p["symbol"]]
            asset = row["quoteAsset"] if p["side"] == "BUY" else row["baseAsset"]
            amount = qty * (price or stop or Decimal(0)) if p["side"] == "BUY" else qty
            balance = self.balances.setdefault(asset, [Decimal(0), Decimal(0)])
            balance[0] -= amount
            balance[1] += amount
            self._locks[key] = amount
        self._report(order, "NEW")

    def _answer(self, order: dict[str, Any], kind: str, trades: list[dict[str, Any]]) -> Any:
        ack = {k: order.get(k) for k in payload("http_post_order_ack.json")}
        ack["transactTime"] = order["time"]
        if kind == "ACK":
            return ack
        result = {k: order.get(k, v) for k, v in payload("http_post_order.json").items()}
        result["transactTime"] = order["time"]
        if kind == "RESULT":
            return result
        fills = [
            {
                "price": t["price"],
                "qty": t["qty"],
                "commission": t["commission"],
                "commissionAsset": t["commissionAsset"],
                "tradeId": t["id"],
            }
            for t in trades
        ]
        return {**result, "fills": fills}

    def find(self, p: dict[str, str]) -> dict[str, Any] | None:
        self.symbol(p.get("symbol"))
        if "origClientOrderId" in p:
            return self.orders.get((p["symbol"], p["origClientOrderId"]))
        if "orderId" in p:
            found = [o for (s, _), o in self.orders.items() if s == p["symbol"]]
            return next((o for o in found if str(o["orderId"]) == p["orderId"]), None)
        raise Refusal(
            400,
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )

    def query(self, p: dict[str, str]) -> dict[str, Any]:
        order = self.find(p)
        if order is None:
            raise Refusal(400, -2013, "Order does not exist.")
        return order

    def cancel(self, p: dict[str, str]) -> dict[str, Any]:
        order = self.find(p)
        if order is None or order["status"] not in _OPEN:
            raise Refusal(400, -2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        self._release((order["symbol"], order["clientOrderId"]))
        self._report(order, "CANCELED")
        answer = payload("http_delete_order.json")
        answer.update({k: order[k] for k in answer if k in order})
        cancel_id = p.get("newClientOrderId", f"cancel{order['orderId']}")
        answer.update(
            origClientOrderId=order["clientOrderId"],
            clientOrderId=cancel_id,
            transactTime=self.clock_ms(),
        )
        return answer

    def _release(self, key: tuple[str, str]) -> None:
        amount = self._locks.pop(key, Decimal(0))
        order = self.orders[key]
        row = self.symbols[order["symbol"]]
        asset = row["quoteAsset"] if order["side"] == "BUY" else row["baseAsset"]
        balance = self.balances[asset] if amount else [Decimal(0), Decimal(0)]
        balance[0] += amount
        balance[1] -= amount

    # ------------------------------------------------------------ fills

    def fill(
        self, cid: str, qty: Decimal, price: Decimal | None = None, *, symbol: str = "BTCUSDT"
    ) -> dict[str, Any]:
        """Trade ``qty`` of an order: the trade, the order's state, balances, the report."""
        key = (symbol, cid)
        order, row = self.orders[key], self.symbols[symbol]
        price = price if price is not None else self.prices[symbol]
        base, quote = row["baseAsset"], row["quoteAsset"]
        buy = order["side"] == "BUY"
        if key in self._locks:  # what this trade spends comes out of the order's lock
            limit = Decimal(order["price"]) or Decimal(order["stopPrice"])
            part = qty * limit if buy else qty
            self._locks[key] -= part
            spent = self.balances[quote if buy else base]
            spent[0] += part
            spent[1] -= part
        executed = Decimal(order["executedQty"]) + qty
        filled_quote = Decimal(order["cummulativeQuoteQty"]) + qty * price
        done = executed >= Decimal(order["origQty"])
        order.update(
            executedQty=money(executed),
            cummulativeQuoteQty=money(filled_quote),
            status="FILLED" if done else "PARTIALLY_FILLED",
            updateTime=self.clock_ms(),
        )
        if done:
            self._release(key)
        fee, fee_asset = self._fee(qty, price, buy, base, quote)
        self._next_trade_id += 1
        trade = payload("http_get_my_trades.json")[0]
        trade.update(
            symbol=symbol,
            id=self._next_trade_id,
            orderId=order["orderId"],
            price=money(price),
            qty=money(qty),
            quoteQty=money(qty * price),
            commission=money(fee),
            commissionAsset=fee_asset,
            time=self.clock_ms(),
            isBuyer=buy,
        )
        self.trades.append(trade)
        sign = 1 if buy else -1
        for asset, change in ((base, sign * qty), (quote, -sign * qty * price), (fee_asset, -fee)):
            self.balances.setdefault(asset, [Decimal(0), Decimal(0)])[0] += change
        self._report(order, "TRADE", trade)
        if self.after_trade is not None:
            self.after_trade(key)
        return trade

    def _fee(
        self, qty: Decimal, price: Decimal, buy: bool, base: str, quote: str
    ) -> tuple[Decimal, str]:
        if self.fee_asset == "BNB":
            bnb = qty * price * self.bnb_fee_rate / self.prices["BNBUSDT"]
            return bnb.quantize(_E8, ROUND_HALF_UP), "BNB"
        if self.fee_asset == "received" and buy:
            return (qty * self.fee_rate).quantize(_E8, ROUND_HALF_UP), base
        return (qty * price * self.fee_rate).quantize(_E8, ROUND_HALF_UP), quote

    def _report(
        self, order: dict[str, Any], kind: str, trade: dict[str, Any] | None = None
    ) -> None:
        event = payload("ws_api_execution_report.json")["event"]
        now = self.clock_ms()
        event.update(
            E=now,
            s=order["symbol"],
            c=order["clientOrderId"],
            C="",
            S=order["side"],
            o=order["type"],
            q=order["origQty"],
            p=order["price"],
            x=kind,
            X=order["status"],
            i=order["orderId"],
            z=order["executedQty"],
            Z=order["cummulativeQuoteQty"],
            T=now,
            l=trade["qty"] if trade else "0.00000000",
            L=trade["price"] if trade else "0.00000000",
            n=trade["commission"] if trade else "0",
            N=trade["commissionAsset"] if trade else None,
            t=trade["id"] if trade else -1,
            g=order.get("orderListId", -1),
        )
        if kind == "CANCELED":
            event.update(C=order["clientOrderId"], c=f"cancel{order['orderId']}")
        self.report(event)


def _mandatory(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


def _amount(p: dict[str, str], name: str, precision: int) -> Decimal:
    text = p[name]
    if not _DECIMAL.match(text):
        raise Refusal(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range "
            "is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    value = Decimal(text)
    if value.normalize().as_tuple().exponent < -precision:
        raise Refusal(400, -1111, f"Parameter '{name}' has too much precision.")
    return value


def _within(value: Decimal, f: dict[str, Any], what: str, unit: str) -> bool:
    """``value`` passes a PRICE_FILTER / LOT_SIZE-like filter (a 0 bound or step is off)."""
    low, high = Decimal(f[f"min{what}"]), Decimal(f[f"max{what}"])
    step = Decimal(f["tickSize"] if unit == "tick" else f["stepSize"])
    return (
        (not low or value >= low)
        and (not high or value <= high)
        and (not step or value % step == 0)
    )
