"""`SqliteIndex`: the embedded index (`sqlite:///path/index.db`), an `IndexStore`.

SQLite in WAL mode with one writer and a reader per thread: queries run on snapshots while
ingest writes, and concurrent writers are folded into shared transactions by the group
committer, so a durable commit costs one fsync per group rather than per caller.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from hounsfield.adapters.index.sql import derived as derived_sql
from hounsfield.adapters.index.sql import leases, paging, remove, retention, stability
from hounsfield.adapters.index.sql.apikeys import SqlApiKeyStore
from hounsfield.adapters.index.sql.audit import SqlAuditLog
from hounsfield.adapters.index.sql.dialect import Dialect
from hounsfield.adapters.index.sql.documents import SqlDocumentTable
from hounsfield.adapters.index.sql.grants import SqlGrantStore
from hounsfield.adapters.index.sql.jobstore import SqlJobStore
from hounsfield.adapters.index.sql.rows import dumps, loads
from hounsfield.adapters.index.sqlite import read, write
from hounsfield.adapters.index.sqlite.connection import (
    ReaderPool,
    open_connection,
    read_transaction,
)
from hounsfield.adapters.index.sqlite.groupcommit import GroupCommitter
from hounsfield.adapters.index.sqlite.migrate import migrate as run_migrations
from hounsfield.adapters.index.sqlite.write import refresh_modalities, write_events
from hounsfield.domain.model import Level
from hounsfield.domain.query import Query
from hounsfield.ports.audit import AuditLog
from hounsfield.ports.auth import ApiKeyStore
from hounsfield.ports.grants import GrantStore
from hounsfield.ports.index import (
    BeginOutcome,
    DeletedInstances,
    DerivedCopy,
    DocumentCache,
    DocumentStore,
    Event,
    IndexCapabilities,
    InstanceKey,
    NewInstance,
    QueryPage,
    RemoteAE,
    Scope,
    Stats,
    StoredInstance,
)
from hounsfield.ports.jobs import JobStore

T = TypeVar("T")

#: Instances per read transaction when streaming metadata or every instance.
PAGE = 256

#: Times are Unix seconds and JSON is stored as bytes (sql/dialect.py).
DIALECT = Dialect(
    placeholder="?",
    lock_suffix="",  # one writer at a time: the write transaction is the lock
    row_lock="",
    arrays=False,
    to_time=float,
    from_time=lambda value: datetime.fromtimestamp(float(value), UTC),
    to_json=dumps,
    from_json=loads,
)


def _timestamp(moment: datetime) -> float:
    """Unix time of a datetime; a naive one is taken as UTC (the index stores UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class SqliteIndex:
    """The index in one SQLite file. Thread-safe; every method is synchronous."""

    #: Fuzzy names and sequence keys are matched by the reference matcher on candidates, so
    #: both are supported; writers are serialised (one SQLite writer).
    capabilities = IndexCapabilities(
        fuzzy_names=True, sequence_matching=True, concurrent_writers=False, embedded=True
    )

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        self.path = str(path)
        self._writer = open_connection(self.path, durable=durable, reader=False)
        self._committer = GroupCommitter(self._writer, durable=durable)
        self._readers = ReaderPool(self.path, durable=durable)
        self._closed = False
        self._close_lock = threading.Lock()
        #: Durable jobs in the same database (ports/jobs.py).
        self.jobs: JobStore = SqlJobStore(DIALECT, self._committer.run, self._read)
        #: The hash-chained audit trail (ports/audit.py).
        self.audit: AuditLog = SqlAuditLog(DIALECT, self._committer.run, self._read)
        self.grants: GrantStore = SqlGrantStore(DIALECT, self._committer.run, self._read)
        self.forward_rules: DocumentStore = SqlDocumentTable(
            DIALECT, self._committer.run, self._read, "forward_rules"
        )
        #: API keys, hashed (ports/auth.py).
        self.api_keys: ApiKeyStore = SqlApiKeyStore(DIALECT, self._committer.run, self._read)

    # -- lifecycle -----------------------------------------------------------------------

    def migrate(self) -> None:
        self._committer.exclusive(run_migrations)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._readers.close()
        self._committer.exclusive(lambda conn: conn.close())

    @property
    def group_stats(self) -> tuple[int, int]:
        """(transactions, pieces of work) committed by the group committer so far."""
        return self._committer.transactions, self._committer.pieces

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with read_transaction(self._readers.get()) as conn:
            return work(conn)

    # -- ingest --------------------------------------------------------------------------

    def begin(self, instances: Sequence[NewInstance]) -> list[BeginOutcome]:
        items = list(instances)
        return self._committer.run(
            lambda c: write.begin_instances(c, items, time.time()), durable=False
        )

    def commit(self, instances: Sequence[NewInstance], events: Sequence[Event]) -> None:
        items, evs = list(instances), list(events)
        self._committer.run(lambda c: write.commit_instances(c, items, evs, time.time()))

    def abort(self, partition: str, sop_uids: Sequence[str]) -> None:
        uids = list(sop_uids)
        self._committer.run(
            lambda c: remove.abort_instances(DIALECT, c, partition, uids), durable=False
        )

    def sweep_pending(self, older_than: datetime) -> list[str]:
        cutoff = _timestamp(older_than)
        return self._committer.run(lambda c: remove.sweep_pending(DIALECT, c, cutoff))

    # -- queries and retrieval -----------------------------------------------------------

    def query(self, query: Query) -> QueryPage:
        return self._read(lambda c: read.run_query(c, query))

    def instances(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> list[StoredInstance]:
        listing = self._read(
            lambda c: read.list_instances(c, partition, study_uid, series_uid, sop_uid)
        )
        return [inst for _, inst in listing]

    def metadata(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        *,
        cache: DocumentCache | None = None,
    ) -> Iterator[tuple[InstanceKey, bytes]]:
        """Lists the instances now, then fetches documents `PAGE` at a time as the iterator is
        consumed (each page in its own snapshot, from whichever thread iterates), so a large
        study is never held in memory and no transaction stays open between pages."""
        listing = self._read(
            lambda c: read.list_instance_keys(c, partition, study_uid, series_uid, sop_uid)
        )

        def fetch(pks: Sequence[int]) -> dict[int, bytes]:
            return self._read(lambda c: read.documents(c, pks))

        return paging.with_documents(fetch, listing, PAGE, cache)

    def all_instances(self, partition: str | None = None) -> Iterator[StoredInstance]:
        def page(after: int) -> list[tuple[int, StoredInstance]]:
            return self._read(
                partial(read.instances_after, partition=partition, after_pk=after, limit=PAGE * 4)
            )

        return paging.keyset(page, PAGE * 4)

    def level_exists(self, partition: str, level: Level, uid: str) -> bool:
        return self._read(lambda c: read.level_exists(c, partition, level, uid))

    # -- deletion ------------------------------------------------------------------------

    def delete(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        events: Sequence[Event] = (),
    ) -> DeletedInstances:
        scope = (study_uid, series_uid, sop_uid)
        evs = list(events)

        def work(conn: sqlite3.Connection) -> DeletedInstances:
            now = time.time()
            refresh = partial(refresh_modalities, conn)
            deleted = remove.delete_instances(DIALECT, conn, partition, scope, now, refresh)
            if deleted.instances:
                write_events(conn, evs, now)
            return deleted

        return self._committer.run(work)

    # -- outbox, remote AEs, statistics --------------------------------------------------

    def events_since(self, seq: int, limit: int, partition: str | None = None) -> list[Event]:
        return self._read(lambda c: read.events_since(c, seq, limit, partition))

    def put_remote_ae(self, ae: RemoteAE) -> bool:
        def put(conn: sqlite3.Connection) -> bool:
            existed = conn.execute("SELECT 1 FROM remote_aes WHERE aet = ?", (ae.aet,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO remote_aes (aet, host, port, partition, tls, description)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (ae.aet, ae.host, ae.port, ae.partition, int(ae.tls), ae.description),
            )
            return existed is None

        return self._committer.run(put)

    def get_remote_ae(self, aet: str) -> RemoteAE | None:
        return self._read(lambda c: read.get_remote_ae(c, aet))

    def list_remote_aes(self) -> list[RemoteAE]:
        return self._read(read.list_remote_aes)

    def delete_remote_ae(self, aet: str) -> bool:
        return self._committer.run(
            lambda c: c.execute("DELETE FROM remote_aes WHERE aet = ?", (aet,)).rowcount > 0
        )

    def stats(self) -> list[Stats]:
        return self._read(read.stats)

    def put_derived(self, partition: str, sop_uid: str, copy: DerivedCopy) -> bool:
        return self._committer.run(
            lambda c: derived_sql.put(DIALECT, c, partition, sop_uid, copy, time.time())
        )

    def derived(self, partition: str, sop_uid: str, kind: str) -> DerivedCopy | None:
        return self._read(lambda c: derived_sql.get(DIALECT, c, partition, sop_uid, kind))

    def derived_blob_keys(self) -> list[str]:
        return self._read(lambda c: derived_sql.all_blob_keys(DIALECT, c))

    def studies_unchanged_since(self, partition: str, cutoff: datetime, limit: int) -> list[str]:
        seconds = _timestamp(cutoff)
        return self._read(
            lambda c: retention.studies_unchanged_since(DIALECT, c, partition, seconds, limit)
        )

    def claim_lease(self, name: str, owner: str, seconds: float) -> int | None:
        return self._committer.run(
            lambda c: leases.claim(DIALECT, c, name, owner, seconds, time.time()), durable=False
        )

    def advance_lease(self, name: str, owner: str, position: int) -> bool:
        return self._committer.run(lambda c: leases.advance(DIALECT, c, name, owner, position))

    def release_lease(self, name: str, owner: str) -> None:
        self._committer.run(lambda c: leases.release(DIALECT, c, name, owner))

    def mark_stable(self, scope: Scope, quiet_before: datetime, limit: int) -> list[Event]:
        cutoff = _timestamp(quiet_before)

        def work(conn: sqlite3.Connection) -> list[Event]:
            found = stability.mark_stable(DIALECT, conn, scope, cutoff, limit)
            write_events(conn, found, time.time())
            return found

        return self._committer.run(work)
