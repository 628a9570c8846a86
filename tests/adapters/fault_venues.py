"""The fake venues the fault matrix trades on, behind one shape (``MatrixVenue``): the fake
started on its own loop, its bar clock, the ``[venue]`` table pointing through a proxy, and
what the venue holds at the end, read from the fake's own books (``Held``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tests.adapters.alpaca.fake_venue import KEY_ID, SECRET
from tests.adapters.alpaca.market import Market
from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance
from tests.adapters.live_daemon import VenueThread

__all__ = ["VENUES", "AlpacaMatrix", "BinanceMatrix", "Held", "MatrixVenue"]


@dataclass
class Held:
    """The venue's side at the end of a run."""

    positions: dict[str, float]
    cash: float
    cash_digits: float  # how closely the book's cash must match (the venue's reporting)
    trades: list[tuple[str, float]]  # (symbol, signed quantity), in the venue's order
    open_orders: int
    posted: list[str]  # every client order id that reached the venue's order entry


class MatrixVenue(Protocol):
    name: str
    qty: float  # the most the strategy holds of a symbol (above the venue's minimums)
    env: dict[str, str]
    broker_table: str  # the config's [broker] table for this venue
    thread: VenueThread
    fake: Any  # the fake venue itself (a cell may inject a fault through it)

    def start(self, bars: int, interval_s: float) -> None: ...

    def settings(self, proxy_port: int) -> dict[str, Any]: ...

    def symbols(self) -> list[str]: ...

    def start_clock(self) -> None: ...

    def listening(self) -> bool:
        """The daemon's market-data subscription is in place (a bar published now reaches it)."""
        ...

    def published(self) -> int: ...

    def held(self) -> Held: ...


class BinanceMatrix:
    """The fake Binance spot (crypto: fractions; 0.1 at ~100 USDT clears its 5 USDT NOTIONAL)."""

    name = "binance"
    qty = 0.1
    broker_table = "[broker]\nfractional = true\n"

    def __init__(self) -> None:
        self.env = {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET}

    def start(self, bars: int, interval_s: float) -> None:
        async def make() -> FakeBinance:
            fake = FakeBinance(
                api_key=API_KEY, api_secret=API_SECRET, bars=bars, bar_interval_s=interval_s
            )
            fake.balances = {"USDT": [10_000.0, 0.0]}  # a flat account
            await fake.start()
            return fake

        self.thread = VenueThread(make)
        self.fake: FakeBinance = self.thread.fake

    def settings(self, proxy_port: int) -> dict[str, Any]:
        return _through(self.fake.settings, self.fake.port, proxy_port)

    def symbols(self) -> list[str]:
        return list(self.fake.symbols)

    def start_clock(self) -> None:
        self.thread.loop.call_soon_threadsafe(self.fake.start_clock)

    def listening(self) -> bool:
        return bool(self.fake.stream_clients)  # the combined stream names its klines in the URL

    def published(self) -> int:
        return int(self.fake.published)

    def held(self) -> Held:
        fake = self.fake
        positions = {
            s: float(sum(fake.balances.get(s.removesuffix("USDT"), [0.0, 0.0])))
            for s in fake.symbols
        }  # the fake keeps Decimal balances, as the venue does
        trades = [(t["symbol"], float(t["qty"]) * (1 if t["isBuyer"] else -1)) for t in fake.trades]
        live = ("NEW", "PARTIALLY_FILLED")
        open_orders = sum(o["status"] in live for o in fake.orders.values())
        cash = float(sum(fake.balances["USDT"]))  # exact: the fake reports 8 decimals
        return Held(positions, cash, 1e-6, trades, open_orders, list(fake.posted_client_ids))


class AlpacaMatrix:
    """The fake Alpaca with a clock (US equities: whole shares; 1 share of SPY or AAPL)."""

    name = "alpaca"
    qty = 1.0
    broker_table = "[broker]\nfractional = false\n"

    def __init__(self) -> None:
        self.env = {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET}

    def start(self, bars: int, interval_s: float) -> None:
        async def make() -> Market:
            return await Market(bars).start()  # type: ignore[return-value]

        self.interval_s = interval_s
        self.thread = VenueThread(make)
        self.fake: Market = self.thread.fake

    def settings(self, proxy_port: int) -> dict[str, Any]:
        return _through(self.fake.settings(correction_grace_s=0.05), self.fake.port, proxy_port)

    def symbols(self) -> list[str]:
        return list(self.fake.symbols)

    def start_clock(self) -> None:
        self.thread.spawn(self.fake.run_clock(self.interval_s))

    def listening(self) -> bool:
        return bool(self.fake._data_clients)  # authenticated and subscribed to the bars

    def published(self) -> int:
        return int(self.fake.published)

    def held(self) -> Held:
        fake = self.fake
        positions = {s: fake.positions.get(s, 0.0) for s in fake.symbols}
        trades = [
            (str(a["symbol"]), float(a["qty"]) * (1 if a["side"] == "buy" else -1))
            for a in fake.activities
            if a.get("activity_type", "FILL") == "FILL"
        ]
        live = {"new", "accepted", "pending_new", "partially_filled", "pending_cancel"}
        open_orders = sum(o["status"] in live for o in fake.orders.values())
        # GET /v2/account reports cash to the cent and reconciliation adopts it inside the
        # 1-cent tolerance: with half-cent fill prices the book may sit half a cent away
        posted = list(fake.posted_client_ids)
        return Held(positions, fake.cash, 0.005 + 1e-9, trades, open_orders, posted)


def _through(settings: dict[str, Any], port: int, proxy_port: int) -> dict[str, Any]:
    """The fake's ``[venue]`` table with every URL pointing at the proxy instead."""
    return {
        key: value.replace(f":{port}", f":{proxy_port}") if isinstance(value, str) else value
        for key, value in settings.items()
    }


VENUES: dict[str, type[BinanceMatrix] | type[AlpacaMatrix]] = {
    "binance": BinanceMatrix,
    "alpaca": AlpacaMatrix,
}
