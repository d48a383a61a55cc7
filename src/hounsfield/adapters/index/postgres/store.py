"""`PostgresIndex`: the scale-out index (`postgresql://user@host:port/db`), an `IndexStore`.

The same behaviour as `SqliteIndex` (the contract suite is the specification) on a server
that several archive replicas share (DESIGN.md key ideas 7 and 8, issue 5). Differences are
in how, not what: writes of concurrent callers run in parallel transactions instead of a
group commit (PostgreSQL's WAL already groups their flushes), every batch costs a fixed
number of statements (`write`), and contention is retried as a unit of work (`connection`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.types.json import Jsonb

from hounsfield.adapters.index.postgres import begin, read, write
from hounsfield.adapters.index.postgres.batch import Conn, refresh_modalities, utc, write_events
from hounsfield.adapters.index.postgres.connection import open_pool, run_read, run_transaction
from hounsfield.adapters.index.postgres.migrate import PACKAGE, schema_version
from hounsfield.adapters.index.postgres.migrate import migrate as run_migrations
from hounsfield.adapters.index.sql import derived as derived_sql
from hounsfield.adapters.index.sql import leases, paging, remove, retention, stability
from hounsfield.adapters.index.sql.apikeys import SqlApiKeyStore
from hounsfield.adapters.index.sql.audit import SqlAuditLog
from hounsfield.adapters.index.sql.dialect import Dialect
from hounsfield.adapters.index.sql.documents import SqlDocumentTable
from hounsfield.adapters.index.sql.grants import SqlGrantStore
from hounsfield.adapters.index.sql.jobstore import SqlJobStore
from hounsfield.adapters.index.sql.migrations import discover
from hounsfield.adapters.index.sql.rows import dumps
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

#: Instances per round trip when streaming metadata or every instance.
PAGE = 256
#: timestamptz and jsonb; claims skip rows other replicas' workers hold (sql/dialect.py).
DIALECT = Dialect(
    placeholder="%s",
    lock_suffix=" FOR UPDATE SKIP LOCKED",
    row_lock=" FOR UPDATE",
    arrays=True,
    to_time=lambda seconds: datetime.fromtimestamp(seconds, UTC),
    from_time=utc,
    to_json=lambda value: Jsonb(value, dumps=lambda v: dumps(v).decode()),
    from_json=dict,
)
#: URL query parameters read by the adapter rather than libpq.
_OURS = frozenset({"schema", "pool_min", "pool_max"})


class PostgresIndex:
    """The index in a PostgreSQL database (optionally in one schema of it). Thread-safe:
    each call borrows a pooled connection for the duration of its transaction."""

    #: Writers run concurrently, in this process and in other replicas.
    capabilities = IndexCapabilities(
        fuzzy_names=True, sequence_matching=True, concurrent_writers=True
    )

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        durable: bool = True,
        min_connections: int = 1,
        max_connections: int = 8,
    ) -> None:
        self.schema = schema
        self._pool = open_pool(
            conninfo,
            schema=schema,
            durable=durable,
            min_size=min_connections,
            max_size=max_connections,
        )
        self._closed = False
        self._close_lock = threading.Lock()
        #: Durable jobs in the same database (ports/jobs.py).
        self.jobs: JobStore = SqlJobStore(DIALECT, self._run_job_write, self._read)
        #: The hash-chained audit trail (ports/audit.py).
        self.audit: AuditLog = SqlAuditLog(DIALECT, self._run_job_write, self._read)
        self.grants: GrantStore = SqlGrantStore(DIALECT, self._run_job_write, self._read)
        self.forward_rules: DocumentStore = SqlDocumentTable(
            DIALECT, self._run_job_write, self._read, "forward_rules"
        )
        #: API keys, hashed (ports/auth.py).
        self.api_keys: ApiKeyStore = SqlApiKeyStore(DIALECT, self._run_job_write, self._read)

    @classmethod
    def from_url(cls, url: str, *, durable: bool = True) -> PostgresIndex:
        """Open `postgresql://user:password@host:port/db?schema=...&pool_max=...`.

        `schema` (the archive's tables live there, created if missing; default: the
        user's search path), `pool_min` and `pool_max` (connections per process, default
        1 and 8) are ours; every other parameter (sslmode, connect_timeout...) goes to
        libpq as it is. `postgres://` is accepted too, as libpq does.
        """
        parts = urlsplit(url)
        ours: dict[str, str] = {}
        theirs: list[tuple[str, str]] = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in _OURS:
                ours[name] = value
            else:
                theirs.append((name, value))
        conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(theirs)))
        return cls(
            conninfo,
            schema=ours.get("schema") or None,
            durable=durable,
            min_connections=int(ours.get("pool_min", 1)),
            max_connections=int(ours.get("pool_max", 8)),
        )

    # -- lifecycle -----------------------------------------------------------------------

    def migrate(self) -> None:
        with self._pool.connection() as conn:
            run_migrations(conn, self.schema)

    def pending_migrations(self) -> int:
        """How many known migrations the schema lacks (0: up to date)."""
        with self._pool.connection() as conn:
            return len(discover(PACKAGE)) - schema_version(conn)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()

    def _write(self, work: Callable[[Conn], T]) -> T:
        return run_transaction(self._pool, work)

    def _run_job_write(self, work: Callable[[Conn], T], *, durable: bool = True) -> T:
        """Job writes are durable commits; `durable` is the SQLite adapter's hint only."""
        return run_transaction(self._pool, work)

    def _read(self, work: Callable[[Conn], T], *, snapshot: bool = False) -> T:
        return run_read(self._pool, work, snapshot=snapshot)

    # -- ingest --------------------------------------------------------------------------

    def begin(self, instances: Sequence[NewInstance]) -> list[BeginOutcome]:
        items = list(instances)
        if not items:
            return []
        return self._write(lambda c: begin.begin_instances(c, items, datetime.now(UTC)))

    def commit(self, instances: Sequence[NewInstance], events: Sequence[Event]) -> None:
        items, evs = list(instances), list(events)
        self._write(lambda c: write.commit_instances(c, items, evs, datetime.now(UTC)))

    def abort(self, partition: str, sop_uids: Sequence[str]) -> None:
        uids = list(sop_uids)
        self._write(lambda c: remove.abort_instances(DIALECT, c, partition, uids))

    def sweep_pending(self, older_than: datetime) -> list[str]:
        cutoff = utc(older_than).timestamp()
        return self._write(lambda c: remove.sweep_pending(DIALECT, c, cutoff))

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
        consumed, so a large study is never held in memory and no connection stays borrowed
        between pages."""
        listing = self._read(
            lambda c: read.list_instance_keys(c, partition, study_uid, series_uid, sop_uid)
        )

        def fetch(pks: Sequence[int]) -> dict[int, bytes]:
            return self._read(partial(read.documents, pks=list(pks)))

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

        def work(conn: Conn) -> DeletedInstances:
            now = time.time()
            deleted = remove.delete_instances(
                DIALECT,
                conn,
                partition,
                scope,
                now,
                lambda pk: refresh_modalities(conn, partition, [pk]),
            )
            if deleted.instances:
                write_events(conn, evs, datetime.fromtimestamp(now, UTC))
            return deleted

        return self._write(work)

    # -- outbox, remote AEs, statistics --------------------------------------------------

    def events_since(self, seq: int, limit: int, partition: str | None = None) -> list[Event]:
        return self._read(lambda c: read.events_since(c, seq, limit, partition))

    def put_remote_ae(self, ae: RemoteAE) -> bool:
        def put(conn: Conn) -> bool:
            row = conn.execute(
                "INSERT INTO remote_aes AS r (aet, host, port, partition, tls, description)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (aet) DO UPDATE SET"
                " host = EXCLUDED.host, port = EXCLUDED.port, partition = EXCLUDED.partition,"
                " tls = EXCLUDED.tls, description = EXCLUDED.description"
                " RETURNING (xmax = 0)",  # xmax is 0 for a row this statement inserted
                (ae.aet, ae.host, ae.port, ae.partition, ae.tls, ae.description),
            ).fetchone()
            return bool(row is not None and row[0])

        return self._write(put)

    def get_remote_ae(self, aet: str) -> RemoteAE | None:
        return self._read(lambda c: read.get_remote_ae(c, aet))

    def list_remote_aes(self) -> list[RemoteAE]:
        return self._read(read.list_remote_aes)

    def delete_remote_ae(self, aet: str) -> bool:
        return self._write(
            lambda c: c.execute("DELETE FROM remote_aes WHERE aet = %s", (aet,)).rowcount > 0
        )

    def stats(self) -> list[Stats]:
        return self._read(read.stats)

    def put_derived(self, partition: str, sop_uid: str, copy: DerivedCopy) -> bool:
        return self._write(
            lambda c: derived_sql.put(DIALECT, c, partition, sop_uid, copy, time.time())
        )

    def derived(self, partition: str, sop_uid: str, kind: str) -> DerivedCopy | None:
        return self._read(lambda c: derived_sql.get(DIALECT, c, partition, sop_uid, kind))

    def derived_blob_keys(self) -> list[str]:
        return self._read(lambda c: derived_sql.all_blob_keys(DIALECT, c))

    def studies_unchanged_since(self, partition: str, cutoff: datetime, limit: int) -> list[str]:
        seconds = utc(cutoff).timestamp()
        return self._read(
            lambda c: retention.studies_unchanged_since(DIALECT, c, partition, seconds, limit)
        )

    def claim_lease(self, name: str, owner: str, seconds: float) -> int | None:
        return self._write(lambda c: leases.claim(DIALECT, c, name, owner, seconds, time.time()))

    def advance_lease(self, name: str, owner: str, position: int) -> bool:
        return self._write(lambda c: leases.advance(DIALECT, c, name, owner, position))

    def release_lease(self, name: str, owner: str) -> None:
        self._write(lambda c: leases.release(DIALECT, c, name, owner))

    def mark_stable(self, scope: Scope, quiet_before: datetime, limit: int) -> list[Event]:
        cutoff = utc(quiet_before).timestamp()

        def work(conn: Conn) -> list[Event]:
            found = stability.mark_stable(DIALECT, conn, scope, cutoff, limit)
            write_events(conn, found, datetime.now(UTC))
            return found

        return self._write(work)
