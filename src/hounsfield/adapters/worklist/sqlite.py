"""The worklist store in SQLite: one row per item, its DICOM JSON as the value.

A worklist holds at most some thousands of scheduled steps per day, so queries read the
partition's items and let the reference matcher decide (PS3.4 K.2.2.1.1); no pre-filter.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from hounsfield.ports.worklist import WorklistItem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS worklist_items (
    pk INTEGER PRIMARY KEY,
    partition TEXT NOT NULL,
    item_id TEXT NOT NULL,
    dataset BLOB NOT NULL,
    UNIQUE (partition, item_id)
)
"""


class SqliteWorklistStore:
    """`WorklistStore` on one SQLite file (or ":memory:"), one connection behind a lock."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)

    def put(self, item: WorklistItem) -> bool:
        data = orjson.dumps(item.dataset)
        with self._lock:
            found = self._conn.execute(
                "SELECT pk FROM worklist_items WHERE partition = ? AND item_id = ?",
                (item.partition, item.item_id),
            ).fetchone()
            if found is None:
                self._conn.execute(
                    "INSERT INTO worklist_items (partition, item_id, dataset) VALUES (?, ?, ?)",
                    (item.partition, item.item_id, data),
                )
                return True
            self._conn.execute(
                "UPDATE worklist_items SET dataset = ? WHERE pk = ?", (data, found[0])
            )
            return False

    def get(self, partition: str, item_id: str) -> WorklistItem | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT dataset FROM worklist_items WHERE partition = ? AND item_id = ?",
                (partition, item_id),
            ).fetchone()
        return None if row is None else WorklistItem(partition, item_id, orjson.loads(row[0]))

    def delete(self, partition: str, item_id: str) -> bool:
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM worklist_items WHERE partition = ? AND item_id = ?",
                (partition, item_id),
            )
            return cursor.rowcount > 0

    def items(self, partition: str) -> list[WorklistItem]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT item_id, dataset FROM worklist_items WHERE partition = ? ORDER BY pk",
                (partition,),
            ).fetchall()
        return [WorklistItem(partition, item_id, orjson.loads(data)) for item_id, data in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
