"""The read path on PostgreSQL: the SQL shared with SQLite (`sql.query`, ADR 0005) and the
retrieval listings.

psycopg's client-side cursors receive a statement's whole result at once, so the candidate
streams are read in keyset pages (`sql.query.keyset_stream`) sized from the query's limit: a
first page of 100 studies asks for ~101 keys, not for the key of every study in the archive.

A paged name search leaves the choice between collecting the matching studies and walking
them in key order (`sql.query.walk_probe`, which SQLite needs) to the planner: its histograms
on the folded names and its LIMIT-aware costs choose without a statement more, and migration
0009 makes both plans index-only.

A query's statements run in autocommit, each on the latest commits, not in one snapshot:
BEGIN and COMMIT would be two more round trips (a third of a key lookup's time). Nothing
breaks: every fetched row is confirmed by the matcher on what it holds now, a row deleted
between the candidate scan and the fetch is skipped, and a row committed meanwhile is simply
not seen, as if the query had run a moment earlier (QIDO paging was never a snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hounsfield.adapters.index.postgres.batch import Conn
from hounsfield.adapters.index.sql.compile import Dialect
from hounsfield.adapters.index.sql.paging import Listed, document_version
from hounsfield.adapters.index.sql.query import (
    FETCH,
    Row,
    candidate_statements,
    confirm,
    fetch_statement,
    keyset_stream,
    merge_unique,
)
from hounsfield.adapters.index.sql.rows import decode_bulk, decode_pixel
from hounsfield.adapters.index.sql.scope import scoped_instances_sql
from hounsfield.domain.model import Level
from hounsfield.domain.query import Query
from hounsfield.ports.index import Event, InstanceKey, QueryPage, RemoteAE, Stats, StoredInstance

#: psycopg placeholders; name wild cards without a prefix become LIKE (pg_trgm indexes them).
PG = Dialect("%s", contains=True)


def run_query(conn: Conn, query: Query) -> QueryPage:
    """Matches of `query`, `offset` and `limit` applied after confirmation."""
    first = FETCH if query.limit is None else min(FETCH, query.offset + query.limit + 1)

    def run(sql: str, params: list[object]) -> Iterable[tuple[int]]:
        return conn.execute(sql, params).fetchall()

    streams = [
        keyset_stream(run, sql, params, first)
        for sql, params in candidate_statements(query, PG, keyset=True)
    ]

    def fetch(pks: list[int]) -> Iterable[Row]:
        return conn.execute(
            fetch_statement(query.level, len(pks), PG), [query.partition, *pks], binary=True
        ).fetchall()

    return confirm(query, merge_unique(streams), fetch)


_INSTANCE_COLUMNS = (
    "i.pk, i.partition, s.study_uid, se.series_uid, i.sop_uid, i.sop_class_uid,"
    " i.transfer_syntax_uid, i.blob_key, i.size, i.sha256, i.pixel, i.bulk_ranges,"
    " i.number_of_frames"
)


def stored_instance(r: Row) -> StoredInstance:
    return StoredInstance(
        partition=r[1],
        study_uid=r[2],
        series_uid=r[3],
        sop_uid=r[4],
        sop_class_uid=r[5],
        transfer_syntax_uid=r[6],
        blob_key=r[7],
        size=int(r[8]),
        sha256=r[9],
        pixel=decode_pixel(r[10]),
        bulk_ranges=decode_bulk(r[11]),
        number_of_frames=int(r[12]),
    )


def list_instances(
    conn: Conn, partition: str, study_uid: str, series_uid: str | None, sop_uid: str | None
) -> list[tuple[int, StoredInstance]]:
    sql, params = scoped_instances_sql(
        "%s", _INSTANCE_COLUMNS, partition, study_uid, series_uid, sop_uid
    )
    return [(int(r[0]), stored_instance(r)) for r in conn.execute(sql, params, binary=True)]


def list_instance_keys(
    conn: Conn, partition: str, study_uid: str, series_uid: str | None, sop_uid: str | None
) -> list[Listed]:
    """Like `list_instances`, without decoding layouts (series metadata's hot path), with
    the version of each instance's content for the document cache."""
    sql, params = scoped_instances_sql(
        "%s",
        "i.pk, i.partition, s.study_uid, se.series_uid, i.sop_uid, i.sha256, i.created_at",
        partition,
        study_uid,
        series_uid,
        sop_uid,
    )
    return [
        (int(r[0]), InstanceKey(r[1], r[2], r[3], r[4]), document_version(r[5], r[6]))
        for r in conn.execute(sql, params)
    ]


def documents(conn: Conn, pks: Sequence[int]) -> dict[int, bytes]:
    return {
        int(r[0]): bytes(r[1])
        for r in conn.execute(
            "SELECT instance_pk, document FROM instance_metadata WHERE instance_pk = ANY(%s)",
            (list(pks),),
            binary=True,
        )
    }


def instances_after(
    conn: Conn, partition: str | None, after_pk: int, limit: int
) -> list[tuple[int, StoredInstance]]:
    """A page of committed instances in primary key order (keyset pagination)."""
    sql = (
        f"SELECT {_INSTANCE_COLUMNS} FROM instances i"  # noqa: S608
        " JOIN studies s ON s.pk = i.study_pk JOIN series se ON se.pk = i.series_pk"
        " WHERE i.pk > %s AND i.state = 'committed'"
    )
    params: list[object] = [after_pk]
    if partition is not None:
        sql += " AND i.partition = %s"
        params.append(partition)
    sql += " ORDER BY i.pk LIMIT %s"
    params.append(limit)
    return [(int(r[0]), stored_instance(r)) for r in conn.execute(sql, params, binary=True)]


def events_since(conn: Conn, seq: int, limit: int, partition: str | None = None) -> list[Event]:
    sql = "SELECT seq, type, partition, data, time FROM outbox WHERE seq > %s"
    params: list[object] = [seq]
    if partition is not None:
        sql += " AND partition = %s"
        params.append(partition)
    params.append(limit)
    return [
        Event(type=r[1], partition=r[2], data=r[3], seq=int(r[0]), time=r[4])
        for r in conn.execute(sql + " ORDER BY seq LIMIT %s", params)
    ]


def _remote_ae(r: Row) -> RemoteAE:
    return RemoteAE(
        aet=r[0], host=r[1], port=int(r[2]), partition=r[3], tls=bool(r[4]), description=r[5]
    )


def get_remote_ae(conn: Conn, aet: str) -> RemoteAE | None:
    row = conn.execute(
        "SELECT aet, host, port, partition, tls, description FROM remote_aes WHERE aet = %s",
        (aet,),
    ).fetchone()
    return None if row is None else _remote_ae(row)


def list_remote_aes(conn: Conn) -> list[RemoteAE]:
    return [
        _remote_ae(r)
        for r in conn.execute(
            "SELECT aet, host, port, partition, tls, description FROM remote_aes ORDER BY aet"
        )
    ]


def stats(conn: Conn) -> list[Stats]:
    """Per-partition totals from the maintained counts (no scan of the instances table)."""
    patients: dict[str, Any] = dict(
        conn.execute("SELECT partition, count(*) FROM patients GROUP BY partition").fetchall()
    )
    totals: dict[str, Stats] = {}
    for partition, studies, series, instances, size in conn.execute(
        "SELECT partition, count(*), sum(num_series), sum(num_instances), sum(size_bytes)"
        " FROM studies GROUP BY partition"
    ):
        totals[partition] = Stats(
            partition,
            int(patients.get(partition, 0)),
            int(studies),
            int(series),
            int(instances),
            int(size),
        )
    for partition, count in patients.items():
        totals.setdefault(partition, Stats(partition, int(count), 0, 0, 0, 0))
    return [totals[p] for p in sorted(totals)]


_EXISTS: dict[Level, str] = {
    Level.PATIENT: "SELECT 1 FROM patients WHERE partition = %s AND patient_id = %s LIMIT 1",
    Level.STUDY: "SELECT 1 FROM studies WHERE partition = %s AND study_uid = %s",
    Level.SERIES: "SELECT 1 FROM series WHERE partition = %s AND series_uid = %s",
    Level.IMAGE: (
        "SELECT 1 FROM instances WHERE partition = %s AND sop_uid = %s AND state = 'committed'"
    ),
}


def level_exists(conn: Conn, partition: str, level: Level, uid: str) -> bool:
    return conn.execute(_EXISTS[level], (partition, uid)).fetchone() is not None
