"""Group commit: many threads' write batches share one transaction and one fsync.

With `synchronous=FULL` every SQLite commit syncs the WAL to disk, which costs far more than
the inserts themselves; with several associations storing at once, committing each batch
alone would cap ingest at the disk's sync rate. Instead, a thread that wants to write queues
its work; the first one to find the writer idle becomes the leader, takes everything queued,
runs each piece inside its own SAVEPOINT of a single transaction, commits once, then hands
every thread its own result. Threads that queued while the leader was busy are served by the
next leader, so batches grow exactly when the disk is the bottleneck.

Failures stay with the work that caused them: an exception inside one piece rolls back to its
savepoint and is raised in its own thread only. If the shared transaction itself fails (the
COMMIT, or an error that made SQLite roll everything back), the leader retries each piece in
a transaction of its own, so one bad batch never fails its neighbours.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Upper bound of pieces of work per transaction, to bound the latency of the first one.
MAX_GROUP = 128


@dataclass(slots=True, eq=False)
class _Work(Generic[T]):
    run: Callable[[sqlite3.Connection], T]
    transactional: bool = True
    #: Must be on disk when `run` returns; pending-row writes need not be (ADR 0002).
    durable: bool = True
    done: bool = False
    value: Any = None
    error: BaseException | None = field(default=None)

    def finish(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error, self.done = value, error, True

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[no-any-return]


class GroupCommitter:
    """Serialises all use of the writer connection and batches transactional work."""

    def __init__(
        self, conn: sqlite3.Connection, *, max_group: int = MAX_GROUP, durable: bool = False
    ) -> None:
        self._conn = conn
        self._durable = durable
        self._synchronous = "FULL" if durable else "NORMAL"
        self._max_group = max_group
        self._cond = threading.Condition()
        self._queue: list[_Work[Any]] = []
        self._busy = False
        #: Transactions committed and pieces of work they carried (for tests and metrics).
        self.transactions = 0
        self.pieces = 0

    def run(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `work(conn)` inside a write transaction shared with other threads' work.

        `work` may run twice (see the module docstring), so it must derive everything from
        the database and its arguments, and keep no state outside the transaction. With
        `durable=False` (pending rows, aborts) a group made only of such work commits without
        syncing the WAL; the next durable commit syncs those frames too, because the WAL is
        written in order.
        """
        return self._submit(_Work(work, durable=durable))

    def _sync_for(self, batch: list[_Work[Any]]) -> None:
        """Switch `synchronous` between FULL and NORMAL (allowed between transactions only)."""
        if not self._durable:
            return
        wanted = "FULL" if any(item.durable for item in batch) else "NORMAL"
        if wanted != self._synchronous:
            self._conn.execute(f"PRAGMA synchronous = {wanted}")
            self._synchronous = wanted

    def exclusive(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(conn)` alone, outside any transaction (migrations, maintenance)."""
        return self._submit(_Work(work, transactional=False))

    def _submit(self, item: _Work[T]) -> T:
        with self._cond:
            self._queue.append(item)
            while not item.done:
                if self._busy:
                    self._cond.wait()
                    continue
                batch = self._take()
                self._busy = True
                self._cond.release()
                try:
                    self._execute(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        return item.result()

    def _take(self) -> list[_Work[Any]]:
        """The next batch: queued transactional work in order, or one exclusive piece."""
        if not self._queue[0].transactional:
            return [self._queue.pop(0)]
        batch: list[_Work[Any]] = []
        rest: list[_Work[Any]] = []
        for item in self._queue:
            if item.transactional and len(batch) < self._max_group and not rest:
                batch.append(item)
            else:
                rest.append(item)
        self._queue = rest
        return batch

    def _execute(self, batch: list[_Work[Any]]) -> None:
        try:
            if not batch[0].transactional:
                self._run_exclusive(batch[0])
            elif len(batch) == 1:
                self._run_alone(batch[0])
            else:
                self._run_group(batch)
        except BaseException as exc:  # never leave a thread waiting forever
            for item in batch:
                if not item.done:
                    item.finish(error=exc)
            raise

    def _run_exclusive(self, item: _Work[Any]) -> None:
        try:
            item.finish(item.run(self._conn))
        except Exception as exc:
            item.finish(error=exc)

    def _run_alone(self, item: _Work[Any]) -> None:
        conn = self._conn
        try:
            self._sync_for([item])
            conn.execute("BEGIN IMMEDIATE")
            value = item.run(conn)
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback()
            item.finish(error=exc)
        else:
            self.transactions += 1
            self.pieces += 1
            item.finish(value)

    def _run_group(self, batch: list[_Work[Any]]) -> None:
        conn = self._conn
        try:
            self._sync_for(batch)
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # the database is unavailable: nothing item-specific to retry
            for item in batch:
                item.finish(error=exc)
            return
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            for item in batch:
                conn.execute("SAVEPOINT work")
                try:
                    value = item.run(conn)
                except Exception as exc:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back: retry one by one
                    conn.execute("ROLLBACK TO work")
                    conn.execute("RELEASE work")
                    outcomes.append((None, exc))
                else:
                    conn.execute("RELEASE work")
                    outcomes.append((value, None))
            conn.execute("COMMIT")
        except Exception:
            self._rollback()
            for item in batch:
                self._run_alone(item)
            return
        self.transactions += 1
        self.pieces += len(batch)
        for item, (value, error) in zip(batch, outcomes, strict=True):
            item.finish(value, error)

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # already rolled back by SQLite
                self._conn.execute("ROLLBACK")
