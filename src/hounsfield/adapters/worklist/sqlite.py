"""The worklist store in SQLite: one row per item, its DICOM JSON as the value.

A worklist holds at most some thousands of scheduled steps per day, so queries read the
partition's items and let the reference matcher decide (PS3.4 K.2.2.1.1); no pre-filter.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from hounsfield.domain.model import DicomJson
from hounsfield.ports.worklist import WorklistItem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    pk INTEGER PRIMARY KEY,
    partition TEXT NOT NULL,
    item_id TEXT NOT NULL,
    dataset BLOB NOT NULL,
    UNIQUE (partition, item_id)
)
"""
_TABLES = frozenset({"worklist_items", "mpps"})
#: How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 10_000


class SqliteWorklistStore:
    """`WorklistStore` on one SQLite file (or ":memory:"), one connection behind a lock.

    `table` keeps different document kinds apart: "worklist_items" (scheduled steps) and
    "mpps" (performed procedure steps, PS3.4 Annex F), both keyed by partition and id.
    Several processes may share the file (HTTP and DIMSE workers): every read-then-write runs
    in one `BEGIN IMMEDIATE` transaction, and a writer waits for another's lock (busy
    timeout) instead of failing.
    """

    def __init__(self, path: Path | str, table: str = "worklist_items") -> None:
        if table not in _TABLES:
            raise ValueError(f"unknown worklist table {table!r}")
        self._table = table
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA.format(table=table))

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its first read."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _sql(self, statement: str) -> str:
        """The statement on this store's table (an allow-listed name, never user input)."""
        return statement.replace("{table}", self._table)

    def put(self, item: WorklistItem) -> bool:
        data = orjson.dumps(item.dataset)
        key = (item.partition, item.item_id)
        with self._writing() as conn:
            found = conn.execute(
                self._sql("SELECT pk FROM {table} WHERE partition = ? AND item_id = ?"), key
            ).fetchone()
            if found is None:
                conn.execute(
                    self._sql("INSERT INTO {table} (partition, item_id, dataset) VALUES (?, ?, ?)"),
                    (*key, data),
                )
                return True
            conn.execute(self._sql("UPDATE {table} SET dataset = ? WHERE pk = ?"), (data, found[0]))
            return False

    def create(self, item: WorklistItem) -> bool:
        with self._lock:
            cursor = self._conn.execute(
                self._sql(
                    "INSERT INTO {table} (partition, item_id, dataset) VALUES (?, ?, ?)"
                    " ON CONFLICT (partition, item_id) DO NOTHING"
                ),
                (item.partition, item.item_id, orjson.dumps(item.dataset)),
            )
            return cursor.rowcount == 1

    def modify(
        self, partition: str, item_id: str, change: Callable[[DicomJson], DicomJson]
    ) -> DicomJson | None:
        with self._writing() as conn:
            row = conn.execute(
                self._sql("SELECT pk, dataset FROM {table} WHERE partition = ? AND item_id = ?"),
                (partition, item_id),
            ).fetchone()
            if row is None:
                return None
            updated = change(orjson.loads(row[1]))
            conn.execute(
                self._sql("UPDATE {table} SET dataset = ? WHERE pk = ?"),
                (orjson.dumps(updated), row[0]),
            )
            return updated

    def get(self, partition: str, item_id: str) -> WorklistItem | None:
        with self._lock:
            row = self._conn.execute(
                self._sql("SELECT dataset FROM {table} WHERE partition = ? AND item_id = ?"),
                (partition, item_id),
            ).fetchone()
        return None if row is None else WorklistItem(partition, item_id, orjson.loads(row[0]))

    def delete(self, partition: str, item_id: str) -> bool:
        with self._lock:
            cursor = self._conn.execute(
                self._sql("DELETE FROM {table} WHERE partition = ? AND item_id = ?"),
                (partition, item_id),
            )
            return cursor.rowcount > 0

    def items(self, partition: str) -> list[WorklistItem]:
        with self._lock:
            rows = self._conn.execute(
                self._sql("SELECT item_id, dataset FROM {table} WHERE partition = ? ORDER BY pk"),
                (partition,),
            ).fetchall()
        return [WorklistItem(partition, item_id, orjson.loads(data)) for item_id, data in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
