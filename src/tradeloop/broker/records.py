"""FillLog and OrderLog: a run's fills and orders, kept as columns. Pure: no I/O.

Every book records its fills here as rows of plain columns, and a compiled run writes its
kernel's arrays straight in, so results are built from columns (``FillLog.arrays``,
``OrderLog.columns``) and never from one object per fill. ``Fill`` and ``Order`` objects are
made only when someone reads one (``log[i]``, iteration, a slice): both logs are sequences,
so code that reads ``broker.fills`` or ``broker.orders`` as lists keeps working.

An ``OrderLog`` is the list of the live ``Order`` objects of an event-driven run (they
change as the run goes: a strategy holds them); a compiled run's orders are finished when
they arrive, so its ``CompiledOrderLog`` keeps them as columns and builds an ``Order``
(once) only if one is read.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, SupportsIndex, TypeVar, overload

import numpy as np
import numpy.typing as npt

from tradeloop.broker.orders import Order
from tradeloop.clock import utc_datetime
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce

__all__ = ["CompiledOrderLog", "CompiledOrders", "FillArrays", "FillLog", "OrderLog"]

_BUY, _SELL = Side.BUY, Side.SELL
_T = TypeVar("_T")
_FILL_COLUMNS = (
    "order_id",
    "asset_id",
    "side",
    "qty",
    "price",
    "commission",
    "slippage",
    "ts_ns",
    "bar_index",
    "reason",
)


@dataclass(frozen=True, slots=True)
class FillArrays:
    """The fills of a run as numpy columns (row order = booking order)."""

    order_id: npt.NDArray[np.int64]
    asset_id: list[str]
    buy: npt.NDArray[np.bool_]
    qty: npt.NDArray[np.float64]
    price: npt.NDArray[np.float64]
    commission: npt.NDArray[np.float64]
    slippage: npt.NDArray[np.float64]
    ts_ns: npt.NDArray[np.int64]
    bar_index: npt.NDArray[np.int64]
    reason: list[str]
    side: list[Side]

    def __len__(self) -> int:
        return len(self.qty)

    @property
    def signed_qty(self) -> npt.NDArray[np.float64]:
        return np.where(self.buy, self.qty, -self.qty)


class _Column(Generic[_T]):
    """One of a ``FillLog``'s columns, read as a list: the rows ``record`` keeps are moved
    into the columns first (``FillLog._flushed``), so a reader sees every fill."""

    __slots__ = ("index",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.index = _FILL_COLUMNS.index(name)

    @overload
    def __get__(self, log: None, owner: type) -> _Column[_T]: ...

    @overload
    def __get__(self, log: FillLog, owner: type) -> list[_T]: ...

    def __get__(self, log: FillLog | None, owner: type) -> _Column[_T] | list[_T]:
        if log is None:
            return self
        return log._flushed()[self.index]


class FillLog(Sequence[Fill]):
    """Fills as columns; ``log[i]`` builds the ``Fill`` (its ``timestamp`` from ``ts_ns``).

    ``record`` keeps a fill as one row (one append, not ten); the columns take the rows in
    when one is read, so a reader always sees every fill."""

    __slots__ = ("_arrays", "_columns", "_rows")

    def __init__(self, fills: Iterable[Fill] = ()) -> None:
        self._columns: tuple[list[Any], ...] = tuple([] for _ in _FILL_COLUMNS)
        self._rows: list[tuple[Any, ...]] = []  # recorded, not yet in the columns
        self._arrays: FillArrays | None = None
        self.extend(fills)

    def append(self, fill: Fill) -> None:
        self.record(
            fill.order_id,
            fill.asset_id,
            fill.side,
            fill.qty,
            fill.price,
            fill.commission,
            fill.slippage,
            fill.ts_ns,
            fill.bar_index,
            fill.reason,
        )

    def extend(self, fills: Iterable[Fill]) -> None:
        for fill in fills:
            self.append(fill)

    def record(
        self,
        order_id: int,
        asset_id: str,
        side: Side,
        qty: float,
        price: float,
        commission: float,
        slippage: float,
        ts_ns: int,
        bar_index: int,
        reason: str,
    ) -> int:
        """Append one fill's fields (no ``Fill`` is made); return its index."""
        rows = self._rows
        rows.append(
            (order_id, asset_id, side, qty, price, commission, slippage, ts_ns, bar_index, reason)
        )
        self._arrays = None
        return len(self._columns[0]) + len(rows) - 1

    def extend_columns(self, **columns: list[Any]) -> None:
        """Append whole columns at once (a compiled run's fills); every column is required."""
        for column, name in zip(self._flushed(), _FILL_COLUMNS, strict=True):
            column.extend(columns[name])
        self._arrays = None

    def _flushed(self) -> tuple[list[Any], ...]:
        """The columns, with the recorded rows moved into them."""
        rows = self._rows
        if rows:
            for column, values in zip(self._columns, zip(*rows, strict=True), strict=True):
                column.extend(values)
            rows.clear()
        return self._columns

    # the columns (the recorded rows moved in first), in ``_FILL_COLUMNS`` order
    order_id = _Column[int]()
    asset_id = _Column[str]()
    side = _Column[Side]()
    qty = _Column[float]()
    price = _Column[float]()
    commission = _Column[float]()
    slippage = _Column[float]()
    ts_ns = _Column[int]()
    bar_index = _Column[int]()
    reason = _Column[str]()

    def __len__(self) -> int:
        return len(self._columns[0]) + len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Fill: ...

    @overload
    def __getitem__(self, index: slice) -> list[Fill]: ...

    def __getitem__(self, index: int | slice) -> Fill | list[Fill]:
        if isinstance(index, slice):
            return [self._fill(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("fill index out of range")
        return self._fill(index)

    def __iter__(self) -> Iterator[Fill]:
        return (self._fill(i) for i in range(len(self)))

    def __repr__(self) -> str:
        return f"FillLog({len(self)} fills)"

    def _fill(self, i: int) -> Fill:
        columns = self._columns
        recorded = len(columns[0])  # a fill not yet in the columns is read from its row
        row = self._rows[i - recorded] if i >= recorded else [column[i] for column in columns]
        # a Fill's fields are the row's, with the datetime made from ts_ns before it
        return Fill._make((*row[:7], utc_datetime(row[7]), *row[7:]))

    def arrays(self) -> FillArrays:
        """The columns as numpy arrays (made once, until the next fill)."""
        if self._arrays is None:
            self._arrays = FillArrays(
                order_id=np.array(self.order_id, dtype=np.int64),
                asset_id=self.asset_id,
                buy=np.array([side is _BUY for side in self.side], dtype=np.bool_),
                qty=np.array(self.qty, dtype=np.float64),
                price=np.array(self.price, dtype=np.float64),
                commission=np.array(self.commission, dtype=np.float64),
                slippage=np.array(self.slippage, dtype=np.float64),
                ts_ns=np.array(self.ts_ns, dtype=np.int64),
                bar_index=np.array(self.bar_index, dtype=np.int64),
                reason=self.reason,
                side=self.side,
            )
        return self._arrays

    @classmethod
    def of(cls, fills: Sequence[Fill]) -> FillLog:
        """``fills`` as a log (itself if it already is one)."""
        return fills if isinstance(fills, FillLog) else cls(fills)


@dataclass(frozen=True, slots=True)
class CompiledOrders:
    """A compiled run's orders as columns: market, GTC, ids ``first_id`` on, in order.

    Assets, reasons and statuses are codes into ``asset_names``, ``reason_labels`` and
    ``statuses``; ``message`` makes an order's message from its row (rejections and cuts).
    Nothing per order is made until an order or the frame is asked for.
    """

    first_id: int
    asset_code: npt.NDArray[np.int64]
    asset_names: tuple[str, ...]
    buy: npt.NDArray[np.bool_]
    qty: npt.NDArray[np.float64]
    submitted_ts_ns: npt.NDArray[np.int64]
    reason_code: npt.NDArray[np.int64]
    reason_labels: tuple[str, ...]
    status_code: npt.NDArray[np.int64]
    statuses: tuple[OrderStatus, ...]
    filled_qty: npt.NDArray[np.float64]
    avg_fill_price: npt.NDArray[np.float64]
    message: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.qty)

    def column(self, codes: npt.NDArray[np.int64], labels: tuple[Any, ...]) -> list[Any]:
        """``labels[code]`` for every order."""
        return np.asarray(labels, dtype=object)[codes].tolist()  # type: ignore[no-any-return]

    def order(self, i: int) -> Order:
        return Order(
            id=self.first_id + i,
            asset_id=self.asset_names[self.asset_code[i]],
            side=_BUY if self.buy[i] else _SELL,
            qty=float(self.qty[i]),
            order_type=OrderType.MARKET,
            limit_price=None,
            stop_price=None,
            tif=TimeInForce.GTC,
            submitted_ts_ns=int(self.submitted_ts_ns[i]),
            reason=self.reason_labels[self.reason_code[i]],
            status=self.statuses[self.status_code[i]],
            filled_qty=float(self.filled_qty[i]),
            avg_fill_price=float(self.avg_fill_price[i]),
            message=self.message(i),
        )


class OrderLog(list[Order]):
    """Every order of a run, in id order (order ``n`` is ``log[n - 1]``): a plain list of the
    run's ``Order`` objects, which change as the run goes (a strategy holds them)."""

    compiled: CompiledOrders | None = None

    def __repr__(self) -> str:
        return f"OrderLog({len(self)} orders)"


class CompiledOrderLog(OrderLog):
    """A compiled run's finished orders, kept as columns (``compiled``): an ``Order`` is built
    (once) when it is read."""

    def __init__(self, orders: CompiledOrders) -> None:
        super().__init__([None] * len(orders))  # type: ignore[list-item]
        self.compiled = orders

    @overload
    def __getitem__(self, index: SupportsIndex) -> Order: ...

    @overload
    def __getitem__(self, index: slice) -> list[Order]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Order | list[Order]:
        if isinstance(index, slice):
            return [self._order(i) for i in range(*index.indices(len(self)))]
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("order index out of range")
        return self._order(i)

    def __iter__(self) -> Iterator[Order]:
        return (self._order(i) for i in range(len(self)))

    def _order(self, i: int) -> Order:
        order = list.__getitem__(self, i)
        if order is None:
            assert self.compiled is not None
            order = self.compiled.order(i)
            list.__setitem__(self, i, order)
        return order
