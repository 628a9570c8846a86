"""The durable journal: orders, fills and the run's state in SQLite (WAL), one transaction per
timestamp. I/O edge.

A timestamp is either wholly in the journal or not at all, so after a crash the daemon
restores the last committed timestamp exactly (positions are rebuilt by re-applying the
journaled fills through the same accounting) and resumes with the next bar; the orders of
an uncommitted timestamp were never journaled, and re-deciding them gives the same orders
with the same client order ids. A journaled order is never submitted again.

Each commit carries the next sequence number (``seq``), which the daemon's watermark
(``service.watermark``) records outside SQLite, and the journal holds a header naming the run
it belongs to (``service.header``); ``service.integrity`` checks both before a restart
trusts the journal. The file is 0600 (SQLite gives its -wal and -shm the same mode), and an
SQLite failure is a ``StateError`` (``service.storage``), never a raw ``sqlite3`` error.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tradeloop.broker.base import RuntimeBroker
from tradeloop.broker.groups import order_extras, restore_extras
from tradeloop.broker.orders import Order
from tradeloop.clock import utc_datetime
from tradeloop.data.bars import BarTable, TimestampColumns
from tradeloop.events import Fill, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.service.storage import open_private, sqlite_error
from tradeloop.service.watermark import Watermark

__all__ = ["JOURNAL_FILE", "Journal", "JournalState", "client_order_id"]

JOURNAL_FILE = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL UNIQUE, asset_id TEXT NOT NULL,
    side TEXT NOT NULL, qty REAL NOT NULL, order_type TEXT NOT NULL, limit_price REAL,
    stop_price REAL, tif TEXT NOT NULL, submitted_ts_ns INTEGER NOT NULL, reason TEXT NOT NULL,
    status TEXT NOT NULL, filled_qty REAL NOT NULL, avg_fill_price REAL NOT NULL,
    triggered INTEGER NOT NULL, session_day INTEGER, message TEXT NOT NULL, reserve REAL,
    extra TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, asset_id TEXT NOT NULL,
    side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL, commission REAL NOT NULL,
    slippage REAL NOT NULL, ts_ns INTEGER NOT NULL, bar_index INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fill_trades (seq INTEGER PRIMARY KEY, trade_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS bars (
    ts_ns INTEGER PRIMARY KEY, header TEXT NOT NULL, columns BLOB NOT NULL
);
"""


def client_order_id(run_key: str, strategy: str, order: Order) -> str:
    """Deterministic from run, strategy, bar time and intent (asset, side, qty, type, seq)."""
    intent = (
        f"{run_key}|{strategy}|{order.submitted_ts_ns}|{order.asset_id}|{order.side}|{order.qty!r}|"
        f"{order.order_type}|{order.id}"
    )
    return "tl" + hashlib.sha256(intent.encode()).hexdigest()[:30]


@dataclass
class JournalState:
    """What a restart restores."""

    run_key: str
    last_ts_ns: int | None
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    reserve: dict[int, float] = field(default_factory=dict)
    reserved_total: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    strategy: Any = None
    trade_ids: list[str] = field(default_factory=list)  # a venue's trade id per fill (live)
    live: dict[str, Any] = field(default_factory=dict)  # LiveBroker.live_state(): fees, adoptions


class Journal:
    """One SQLite file per daemon (``state_dir/journal.sqlite``)."""

    def __init__(
        self,
        path: Path,
        strategy: str,
        *,
        read_only: bool = False,
        watermark: Watermark | None = None,
    ) -> None:
        self.path = path
        self.strategy = strategy
        self.watermark = watermark  # told each commit's number once it is durable
        try:
            if read_only:
                # a reader beside a running daemon: WAL lets it read while the daemon writes
                self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                os.close(open_private(path, "open the journal"))  # 0600: its -wal and -shm follow
                self._db = sqlite3.connect(path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
                if "extra" not in columns:  # a journal from before order options and groups
                    self._db.execute("ALTER TABLE orders ADD COLUMN extra TEXT")
            self.run_key = self._meta("run_key") or uuid.uuid4().hex[:16]
            self.seq = int(self._meta("seq") or 0)
        except sqlite3.Error as err:
            if hasattr(self, "_db"):
                self._db.close()
            raise sqlite_error(path, "open the journal", err) from err
        self._saved_fills = 0
        self._saved_orders = 0
        self._open_ids: set[int] = set()
        self._pending_bars: list[TimestampColumns] = []

    @classmethod
    def reader(cls, path: Path) -> Journal:
        """The journal at ``path``, opened read-only (``tradeloop report`` on a live daemon)."""
        return cls(path, "", read_only=True)

    def client_id_minter(self) -> Callable[[Order], str]:
        """The deterministic client order id of each new order (``OrderBook.mint_client_id``):
        from this journal's run key, the strategy, the bar time and the intent."""
        return functools.partial(client_order_id, self.run_key, self.strategy)

    def close(self) -> None:
        self._db.close()
        if self.watermark is not None:
            self.watermark.close()

    def header(self) -> dict[str, Any] | None:
        """The header of the run this journal belongs to (None: written before headers)."""
        stored = self._meta("header")
        return None if stored is None else dict(json.loads(stored))

    def write_header(self, header_json: str) -> None:
        self._write_meta("header", header_json)

    def has_state(self) -> bool:
        """Whether any timestamp was ever committed here."""
        return self.seq > 0 or self._meta("last_ts_ns") is not None

    def check(self) -> None:
        """Read every page (``PRAGMA quick_check``); a damaged file is a StateDamagedError."""
        try:
            rows = [str(row[0]) for row in self._db.execute("PRAGMA quick_check")]
        except sqlite3.Error as err:
            raise sqlite_error(self.path, "check the journal", err) from err
        if rows != ["ok"]:
            raise sqlite_error(
                self.path, "check the journal", sqlite3.DatabaseError("malformed: " + rows[0])
            )

    def record_bars(self, stamp: TimestampColumns) -> None:
        """Keep one handled timestamp's bars; written with the next ``commit`` (its own
        transaction), so the journal's bars and book always describe the same timestamps."""
        self._pending_bars.append(stamp)

    def handled_bars(self) -> BarTable | None:
        """Every bar the run has handled so far (what its result is built from)."""
        stamps: list[TimestampColumns] = []
        for ts_ns, header, blob in self._db.execute(
            "SELECT ts_ns, header, columns FROM bars ORDER BY ts_ns"
        ):
            head = json.loads(header)
            ids, names = head["asset_id"], head["columns"]
            values = np.frombuffer(blob, dtype="<f8").reshape(len(names), len(ids))
            stamps.append((ts_ns, ids, dict(zip(names, values, strict=True))))
        return BarTable.from_timestamps(stamps) if stamps else None

    def _meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):  # read-only, before the schema's first commit
                return None
            raise
        return None if row is None else str(row[0])

    def remember(self, key: str, value: str) -> None:
        """Keep one setting of the run (e.g. a live account's starting cash) across restarts."""
        self._write_meta(f"user:{key}", value)

    def _write_meta(self, key: str, value: str) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        except sqlite3.Error as err:
            raise sqlite_error(self.path, f"write {key}", err) from err

    def recall(self, key: str) -> str | None:
        return self._meta(f"user:{key}")

    def load(self) -> JournalState:
        """What the journal holds (empty before its first commit)."""
        try:
            return self._load()
        except sqlite3.Error as err:
            raise sqlite_error(self.path, "read the journal", err) from err

    def _load(self) -> JournalState:
        last = self._meta("last_ts_ns")
        state = JournalState(self.run_key, None if last is None else int(last))
        if last is None:
            return state
        extras: dict[int, dict[str, Any]] = {}
        for row in self._db.execute("SELECT * FROM orders ORDER BY order_id"):
            order = Order(
                id=row[0],
                asset_id=row[2],
                side=Side(row[3]),
                qty=row[4],
                order_type=OrderType(row[5]),
                limit_price=row[6],
                stop_price=row[7],
                tif=TimeInForce(row[8]),
                submitted_ts_ns=row[9],
                reason=row[10],
                status=OrderStatus(row[11]),
                filled_qty=row[12],
                avg_fill_price=row[13],
                triggered=bool(row[14]),
                session_end_ns=_session_end(row[15]),
                message=row[16],
                client_order_id=row[1],
            )
            state.orders.append(order)
            if order.is_open and row[17] is not None:
                state.reserve[order.id] = row[17]
            if row[18] is not None:
                extras[order.id] = json.loads(row[18])
        restore_extras(state.orders, extras)
        for row in self._db.execute("SELECT * FROM fills ORDER BY seq"):
            state.fills.append(
                Fill(
                    row[1],
                    row[2],
                    Side(row[3]),
                    row[4],
                    row[5],
                    row[6],
                    row[7],
                    utc_datetime(row[8]),
                    row[8],
                    row[9],
                    row[10],
                )
            )
        state.trade_ids = [
            row[0] for row in self._db.execute("SELECT trade_id FROM fill_trades ORDER BY seq")
        ]
        state.reserved_total = float(self._meta("reserved_total") or 0.0)
        state.marks = json.loads(self._meta("marks") or "{}")
        state.runtime = json.loads(self._meta("runtime") or "{}")
        state.strategy = json.loads(self._meta("strategy_state") or "null")
        state.live = json.loads(self._meta("live_state") or "{}")
        self._saved_fills = len(state.fills)
        self._saved_orders = len(state.orders)
        self._open_ids = {o.id for o in state.orders if _live(o)}
        return state

    def commit(
        self, ts_ns: int, broker: RuntimeBroker, runtime: dict[str, Any], strategy_state: Any
    ) -> None:
        """Write everything that changed at timestamp ``ts_ns`` in one transaction."""
        orders = broker.orders
        changed = [o for o in orders[self._saved_orders :]]
        changed += [orders[i - 1] for i in sorted(self._open_ids) if i <= self._saved_orders]
        fills = broker.fills[self._saved_fills :]
        reserve = broker.reserved()
        db = self._db
        seq = self.seq + 1
        try:
            db.execute("BEGIN")
            for order in changed:
                cid = order.client_order_id or client_order_id(self.run_key, self.strategy, order)
                db.execute(
                    "INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        order.id,
                        cid,
                        order.asset_id,
                        order.side.value,
                        order.qty,
                        order.order_type.value,
                        order.limit_price,
                        order.stop_price,
                        order.tif.value,
                        order.submitted_ts_ns,
                        order.reason,
                        order.status.value,
                        order.filled_qty,
                        order.avg_fill_price,
                        int(order.triggered),
                        order.session_end_ns,
                        order.message,
                        reserve.get(order.id),
                        _extras_json(order),
                    ),
                )
            db.executemany(
                "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        self._saved_fills + n,
                        f.order_id,
                        f.asset_id,
                        f.side.value,
                        f.qty,
                        f.price,
                        f.commission,
                        f.slippage,
                        f.ts_ns,
                        f.bar_index,
                        f.reason,
                    )
                    for n, f in enumerate(fills)
                ],
            )
            trade_ids: list[str] = getattr(broker, "trade_ids", [])
            db.executemany(
                "INSERT INTO fill_trades VALUES (?, ?)",
                [
                    (seq, trade_ids[seq])
                    for seq in range(self._saved_fills, min(len(trade_ids), len(broker.fills)))
                ],
            )
            meta = {
                "run_key": self.run_key,
                "seq": str(seq),
                "last_ts_ns": str(ts_ns),
                "reserved_total": repr(broker.buying_power_reserved()),
                "marks": json.dumps(broker.marks.as_dict()),
                "runtime": json.dumps(runtime),
                "strategy_state": json.dumps(strategy_state),
            }
            live_state = getattr(broker, "live_state", None)
            if live_state is not None:
                meta["live_state"] = json.dumps(live_state())
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
            db.executemany(
                "INSERT OR REPLACE INTO bars VALUES (?, ?, ?)",
                [_bar_row(stamp) for stamp in self._pending_bars],
            )
            db.execute("COMMIT")
        except BaseException as err:
            if db.in_transaction:  # SQLite may have rolled back already (disk full)
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise sqlite_error(self.path, "commit a timestamp", err) from err
            raise
        self.seq = seq
        if self.watermark is not None:
            self.watermark.advance(seq)
        self._pending_bars = []
        self._saved_orders = len(orders)
        self._saved_fills = len(broker.fills)
        self._open_ids = {o.id for o in orders if _live(o)}


def _bar_row(stamp: TimestampColumns) -> tuple[int, str, bytes]:
    ts_ns, ids, columns = stamp
    names = sorted(columns)
    header = json.dumps({"asset_id": ids, "columns": names})
    body = np.concatenate([np.asarray(columns[n], dtype="<f8") for n in names]) if names else b""
    return ts_ns, header, body.tobytes() if isinstance(body, np.ndarray) else body


def _live(order: Order) -> bool:
    """Open, held or of unknown outcome: an order whose row may still change (and must be
    written again; an unknown one is looked up and becomes accepted, filled or rejected)."""
    return order.is_open or order.status in (OrderStatus.HELD, OrderStatus.UNKNOWN)


def _extras_json(order: Order) -> str | None:
    extras = order_extras(order)
    return None if extras is None else json.dumps(extras)


def _session_end(stored: int | None) -> int | None:
    """A DAY order's session end as journaled: nanoseconds; a journal written before
    sessions existed holds the UTC day index instead (that day ends at the next midnight)."""
    if stored is None or stored > 10**12:
        return stored
    return (stored + 1) * 86_400 * 1_000_000_000
