"""SQLite connections: one writer, one reader per thread, all in WAL mode.

WAL lets readers run on a snapshot while the writer appends (https://sqlite.org/wal.html), so
queries never wait for ingest. Python's sqlite3 objects are not safe to share between threads
mid-transaction, hence a reader per thread (services call the index from a thread pool) and a
single writer used by one thread at a time (the group committer's leader).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BUSY_TIMEOUT_MS = 10_000
_CACHE_KIB = 32_768
_MMAP_BYTES = 256 * 1024 * 1024


def open_connection(path: str, *, durable: bool, reader: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), with the archive pragmas.

    `synchronous=FULL` makes every commit fsync the WAL, so a commit that returned survives a
    power loss; NORMAL only syncs at checkpoints (safe against a process crash, not a power
    loss) and is for tests and throw-away archives.
    """
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=512,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not reader:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode on {path} (got {mode})")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        conn.execute("PRAGMA temp_store = MEMORY")
        if reader:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run several SELECTs on one consistent snapshot of the database."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")


class ReaderPool:
    """One read-only connection per thread, closed together by `close`.

    Connections of threads that ended are closed when the next one is opened, so a thread
    pool that replaces its threads does not accumulate file handles.
    """

    def __init__(self, path: str, *, durable: bool) -> None:
        self._path = path
        self._durable = durable
        self._local = threading.local()
        self._lock = threading.Lock()
        self._owners: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = open_connection(self._path, durable=self._durable, reader=True)
        with self._lock:
            if self._closed:
                conn.close()
                raise sqlite3.ProgrammingError("the index is closed")
            alive: list[tuple[threading.Thread, sqlite3.Connection]] = []
            for thread, other in self._owners:
                if thread.is_alive():
                    alive.append((thread, other))
                else:
                    other.close()
            alive.append((threading.current_thread(), conn))
            self._owners = alive
        self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            owners, self._owners = self._owners, []
        for _, conn in owners:
            conn.close()
