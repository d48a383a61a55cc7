"""The read path: queries confirmed by the reference matcher, and retrieval listings.

Queries are the SQL shared with PostgreSQL (`sql.query`, ADR 0005): a compiled pre-filter
whose candidates `domain.matching.matches` confirms, so results are exactly the reference
matcher's (PS3.4 C.2.2.2) and paging is stable in primary key order. SQLite cursors stream
lazily, so the candidate streams are read without paging.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from hounsfield.adapters.index.sql.paging import Listed, document_version
from hounsfield.adapters.index.sql.query import (
    Row,
    candidate_statements,
    confirm,
    fetch_statement,
    merge_unique,
    walk_probe,
)
from hounsfield.adapters.index.sql.rows import decode_bulk, decode_pixel, loads
from hounsfield.adapters.index.sql.scope import scoped_instances_sql
from hounsfield.domain.model import Level
from hounsfield.domain.query import Query
from hounsfield.ports.index import (
    Event,
    InstanceKey,
    QueryPage,
    RemoteAE,
    Stats,
    StoredInstance,
)


def run_query(conn: sqlite3.Connection, query: Query) -> QueryPage:
    """Matches of `query`, `offset` and `limit` applied after confirmation (`sql.query`); a
    paged name search first counts its matching names to choose how to read (`walk_probe`)."""
    walk = walk_probe(query, lambda sql, params: conn.execute(sql, params).fetchone())
    streams = [conn.execute(sql, params) for sql, params in candidate_statements(query, walk=walk)]

    def fetch(pks: list[int]) -> list[Row]:
        return conn.execute(
            fetch_statement(query.level, len(pks)), [query.partition, *pks]
        ).fetchall()

    try:
        return confirm(query, merge_unique(streams), fetch)
    finally:
        for cursor in streams:
            cursor.close()


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
        size=r[8],
        sha256=r[9],
        pixel=decode_pixel(r[10]),
        bulk_ranges=decode_bulk(r[11]),
        number_of_frames=r[12],
    )


def list_instances(
    conn: sqlite3.Connection,
    partition: str,
    study_uid: str,
    series_uid: str | None,
    sop_uid: str | None,
) -> list[tuple[int, StoredInstance]]:
    sql, params = scoped_instances_sql(
        "?", _INSTANCE_COLUMNS, partition, study_uid, series_uid, sop_uid
    )
    return [(int(r[0]), stored_instance(r)) for r in conn.execute(sql, params)]


def list_instance_keys(
    conn: sqlite3.Connection,
    partition: str,
    study_uid: str,
    series_uid: str | None,
    sop_uid: str | None,
) -> list[Listed]:
    """Like `list_instances`, without decoding layouts (series metadata's hot path), with
    the version of each instance's content for the document cache."""
    sql, params = scoped_instances_sql(
        "?",
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


def documents(conn: sqlite3.Connection, pks: Sequence[int]) -> dict[int, bytes]:
    marks = ", ".join("?" * len(pks))
    return {
        int(r[0]): bytes(r[1])
        for r in conn.execute(
            f"SELECT instance_pk, document FROM instance_metadata WHERE instance_pk IN ({marks})",  # noqa: S608
            list(pks),
        )
    }


def instances_after(
    conn: sqlite3.Connection, partition: str | None, after_pk: int, limit: int
) -> list[tuple[int, StoredInstance]]:
    """A page of committed instances in primary key order (keyset pagination)."""
    sql = (
        f"SELECT {_INSTANCE_COLUMNS} FROM instances i"  # noqa: S608
        " JOIN studies s ON s.pk = i.study_pk JOIN series se ON se.pk = i.series_pk"
        " WHERE i.pk > ? AND i.state = 'committed'"
    )
    params: list[object] = [after_pk]
    if partition is not None:
        sql += " AND i.partition = ?"
        params.append(partition)
    sql += " ORDER BY i.pk LIMIT ?"
    params.append(limit)
    return [(int(r[0]), stored_instance(r)) for r in conn.execute(sql, params)]


def events_since(
    conn: sqlite3.Connection, seq: int, limit: int, partition: str | None = None
) -> list[Event]:
    sql = "SELECT seq, type, partition, data, time FROM outbox WHERE seq > ?"
    params: list[object] = [seq]
    if partition is not None:
        sql += " AND partition = ?"
        params.append(partition)
    params.append(limit)
    return [
        Event(
            type=r[1],
            partition=r[2],
            data=loads(r[3]),
            seq=int(r[0]),
            time=datetime.fromisoformat(r[4]),
        )
        for r in conn.execute(sql + " ORDER BY seq LIMIT ?", params)
    ]


def _remote_ae(r: Row) -> RemoteAE:
    return RemoteAE(
        aet=r[0], host=r[1], port=int(r[2]), partition=r[3], tls=bool(r[4]), description=r[5]
    )


def get_remote_ae(conn: sqlite3.Connection, aet: str) -> RemoteAE | None:
    row = conn.execute(
        "SELECT aet, host, port, partition, tls, description FROM remote_aes WHERE aet = ?",
        (aet,),
    ).fetchone()
    return None if row is None else _remote_ae(row)


def list_remote_aes(conn: sqlite3.Connection) -> list[RemoteAE]:
    return [
        _remote_ae(r)
        for r in conn.execute(
            "SELECT aet, host, port, partition, tls, description FROM remote_aes ORDER BY aet"
        )
    ]


def stats(conn: sqlite3.Connection) -> list[Stats]:
    """Per-partition totals from the maintained counts (no scan of the instances table)."""
    patients = dict(conn.execute("SELECT partition, count(*) FROM patients GROUP BY partition"))
    totals: dict[str, Stats] = {}
    for partition, studies, series, instances, size in conn.execute(
        "SELECT partition, count(*), sum(num_series), sum(num_instances), sum(size_bytes)"
        " FROM studies GROUP BY partition"
    ):
        totals[partition] = Stats(
            partition, int(patients.get(partition, 0)), studies, series, instances, size
        )
    for partition, count in patients.items():
        totals.setdefault(partition, Stats(partition, int(count), 0, 0, 0, 0))
    return [totals[p] for p in sorted(totals)]


_EXISTS: dict[Level, str] = {
    Level.PATIENT: "SELECT 1 FROM patients WHERE partition = ? AND patient_id = ?",
    Level.STUDY: "SELECT 1 FROM studies WHERE partition = ? AND study_uid = ?",
    Level.SERIES: "SELECT 1 FROM series WHERE partition = ? AND series_uid = ?",
    Level.IMAGE: (
        "SELECT 1 FROM instances WHERE partition = ? AND sop_uid = ? AND state = 'committed'"
    ),
}


def level_exists(conn: sqlite3.Connection, partition: str, level: Level, uid: str) -> bool:
    return conn.execute(_EXISTS[level], (partition, uid)).fetchone() is not None
