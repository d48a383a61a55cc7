"""The read path: queries confirmed by the reference matcher, and retrieval listings.

A query runs the compiled pre-filter (`sql.compile`) ordered by the level's primary key, plus
one stream per table whose irregular rows must be reconsidered (`sql.columns`), merges the
streams in key order and keeps the rows that `domain.matching.matches` accepts. Results are
therefore exactly the reference matcher's (PS3.4 C.2.2.2) whatever the SQL does, and paging
is stable: rows come in insertion order (primary key), which never changes for a row.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from hounsfield.adapters.index.sql.compile import compile_prefilter
from hounsfield.adapters.index.sql.rows import (
    decode_bulk,
    decode_pixel,
    instance_row,
    loads,
    patient_row,
    series_row,
    study_row,
)
from hounsfield.domain.matching import matches
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.query import Query
from hounsfield.ports.index import (
    Event,
    InstanceKey,
    QueryPage,
    RemoteAE,
    Stats,
    StoredInstance,
)

T = TypeVar("T")

_JOINS: dict[Level, str] = {
    Level.PATIENT: "patients p",
    Level.STUDY: "studies s JOIN patients p ON p.pk = s.patient_pk",
    Level.SERIES: (
        "series se JOIN studies s ON s.pk = se.study_pk JOIN patients p ON p.pk = s.patient_pk"
    ),
    Level.IMAGE: (
        "instances i JOIN series se ON se.pk = i.series_pk"
        " JOIN studies s ON s.pk = se.study_pk JOIN patients p ON p.pk = s.patient_pk"
    ),
}
_COLUMNS: dict[Level, str] = {
    Level.PATIENT: "p.pk, p.attrs, p.num_studies, p.num_series, p.num_instances",
    Level.STUDY: (
        "s.pk, p.pk, p.attrs, s.attrs, s.study_uid, s.num_series, s.num_instances,"
        " s.modalities, s.sop_classes"
    ),
    Level.SERIES: (
        "se.pk, p.pk, p.attrs, s.pk, s.attrs, se.attrs, s.study_uid, se.series_uid,"
        " se.num_instances"
    ),
    Level.IMAGE: (
        "i.pk, p.pk, p.attrs, s.pk, s.attrs, se.pk, se.attrs, i.attrs, s.study_uid,"
        " se.series_uid, i.sop_uid, i.sop_class_uid"
    ),
}
_BASE: dict[Level, str] = {
    Level.PATIENT: "p",
    Level.STUDY: "s",
    Level.SERIES: "se",
    Level.IMAGE: "i",
}
#: Rows fetched per round trip once candidates are known (and never more than needed + 1).
_FETCH = 128

_Row = tuple[Any, ...]


class _Decoder:
    """Builds row JSON, decoding each parent's attributes once per query (an instance query
    returns many rows of the same series). Rows share parent elements: treat as read-only."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], DicomJson] = {}

    def attrs(self, alias: str, pk: int, blob: bytes) -> DicomJson:
        key = (alias, pk)
        found = self._cache.get(key)
        if found is None:
            found = loads(blob)
            self._cache[key] = found
        return found

    def row(self, level: Level, r: _Row) -> DicomJson:
        if level is Level.PATIENT:
            return patient_row(loads(r[1]), r[2], r[3], r[4])
        if level is Level.STUDY:
            patient = self.attrs("p", r[1], r[2])
            return study_row(patient, loads(r[3]), r[4], r[5], r[6], loads(r[7]), loads(r[8]))
        if level is Level.SERIES:
            patient, study = self.attrs("p", r[1], r[2]), self.attrs("s", r[3], r[4])
            return series_row(patient, study, loads(r[5]), r[6], r[7], r[8])
        patient, study = self.attrs("p", r[1], r[2]), self.attrs("s", r[3], r[4])
        series = self.attrs("se", r[5], r[6])
        return instance_row(
            patient, study, series, loads(r[7] or b"{}"), (r[8], r[9], r[10], r[11])
        )


_TABLES = {"p": "patients", "s": "studies", "se": "series", "i": "instances"}
#: How a level's table reaches a parent: (base, parent) -> join; patients through studies.
_PARENT_JOINS = {
    ("i", "se"): "JOIN series se ON se.pk = i.series_pk",
    ("i", "s"): "JOIN studies s ON s.pk = i.study_pk",
    ("se", "s"): "JOIN studies s ON s.pk = se.study_pk",
    ("i", "p"): "JOIN patients p ON p.pk = s.patient_pk",
    ("se", "p"): "JOIN patients p ON p.pk = s.patient_pk",
    ("s", "p"): "JOIN patients p ON p.pk = s.patient_pk",
}


def _candidate_from(
    level: Level, tables: set[str], partition: str
) -> tuple[str, list[str], list[object]]:
    """FROM clause joining only the tables conditions refer to, and the partition scope.

    Every joined table is scoped to the partition (DESIGN.md key idea 6: no statement can
    see another partition's rows), which also keeps indexes that start with it usable.
    """
    base = _BASE[level]
    needed = set(tables)
    if "p" in needed and base != "p":
        needed.add("s")  # patients are reached through studies
    needed.discard(base)
    parts = [f"{_TABLES[base]} {base}"]
    parts += [_PARENT_JOINS[(base, alias)] for alias in ("se", "s", "p") if alias in needed]
    joined = [base, *(alias for alias in ("se", "s", "p") if alias in needed)]
    scope = [f"{alias}.partition = ?" for alias in joined]
    params: list[object] = [partition] * len(scope)
    if level is Level.IMAGE:
        scope.append("i.state = 'committed'")
    return " ".join(parts), scope, params


def _merge_unique(streams: Sequence[Iterator[tuple[int]]]) -> Iterator[int]:
    """Merge key-ordered streams of primary keys, dropping keys already seen."""
    last: int | None = None
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    for (pk,) in merged:
        if pk != last:
            last = pk
            yield pk


def candidate_statements(query: Query) -> list[tuple[str, list[object]]]:
    """The SQL of the candidate streams: the compiled pre-filter, then one stream per table
    whose irregular rows must be reconsidered. Each yields primary keys in order, so sorting
    (when an index other than the primary key drives the search) moves keys, not documents."""
    base = _BASE[query.level]
    prefilter = compile_prefilter(query)
    joins, scope, scope_params = _candidate_from(
        query.level, set(prefilter.tables), query.partition
    )
    where = " AND ".join(scope + prefilter.clauses)
    order = prefilter.order or f"{base}.pk"
    statements = [
        (
            f"SELECT {order} FROM {joins} {' '.join(prefilter.joins)}"  # noqa: S608
            f" WHERE {where} ORDER BY {order}",
            [*prefilter.join_params, *scope_params, *prefilter.params],
        )
    ]
    for alias in sorted(prefilter.irregular):
        joins, scope, scope_params = _candidate_from(query.level, {alias}, query.partition)
        statements.append(
            (
                f"SELECT {base}.pk FROM {joins} WHERE {' AND '.join(scope)}"  # noqa: S608
                f" AND {alias}.irregular = 1 ORDER BY {base}.pk",
                scope_params,
            )
        )
    return statements


def _fetch(conn: sqlite3.Connection, query: Query, pks: list[int]) -> list[_Row]:
    """The rows of candidate keys, in the order of `pks`."""
    base = _BASE[query.level]
    marks = ", ".join("?" * len(pks))
    found = {
        int(r[0]): r
        for r in conn.execute(
            f"SELECT {_COLUMNS[query.level]} FROM {_JOINS[query.level]}"  # noqa: S608
            f" WHERE {base}.partition = ? AND {base}.pk IN ({marks})",
            [query.partition, *pks],
        )
    }
    return [found[pk] for pk in pks if pk in found]


def run_query(conn: sqlite3.Connection, query: Query) -> QueryPage:
    """Matches of `query`, `offset` and `limit` applied after confirmation."""
    streams = [conn.execute(sql, params) for sql, params in candidate_statements(query)]
    try:
        return _confirm(conn, query, _merge_unique(streams))
    finally:
        for cursor in streams:
            cursor.close()


def _confirm(conn: sqlite3.Connection, query: Query, candidates: Iterator[int]) -> QueryPage:
    decoder = _Decoder()
    wanted = None if query.limit is None else query.offset + query.limit
    rows: list[DicomJson] = []
    seen = 0
    while True:
        size = _FETCH if wanted is None else max(1, min(_FETCH, wanted - seen + 1))
        pks = list(itertools.islice(candidates, size))
        if not pks:
            return QueryPage(rows=rows, more=False)
        for raw in _fetch(conn, query, pks):
            row = decoder.row(query.level, raw)
            if not matches(query.keys, row, fuzzy=query.fuzzy):
                continue
            if wanted is not None and seen >= wanted:
                return QueryPage(rows=rows, more=True)
            if seen >= query.offset:
                rows.append(row)
            seen += 1


_INSTANCE_COLUMNS = (
    "i.pk, i.partition, s.study_uid, se.series_uid, i.sop_uid, i.sop_class_uid,"
    " i.transfer_syntax_uid, i.blob_key, i.size, i.sha256, i.pixel, i.bulk_ranges,"
    " i.number_of_frames"
)


def stored_instance(r: _Row) -> StoredInstance:
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


def _scoped_instances_sql(
    columns: str, partition: str, study_uid: str, series_uid: str | None, sop_uid: str | None
) -> tuple[str, list[object]]:
    """Committed instances in scope, by series then instance number (then arrival)."""
    sql = (
        f"SELECT {columns} FROM instances i"  # noqa: S608
        " JOIN studies s ON s.pk = i.study_pk JOIN series se ON se.pk = i.series_pk"
        " WHERE s.partition = ? AND s.study_uid = ? AND i.state = 'committed'"
    )
    params: list[object] = [partition, study_uid]
    if series_uid is not None:
        sql += " AND se.series_uid = ?"
        params.append(series_uid)
    if sop_uid is not None:
        sql += " AND i.sop_uid = ?"
        params.append(sop_uid)
    sql += (
        " ORDER BY se.series_number IS NULL, se.series_number, se.pk,"
        " i.instance_number IS NULL, i.instance_number, i.pk"
    )
    return sql, params


def list_instances(
    conn: sqlite3.Connection,
    partition: str,
    study_uid: str,
    series_uid: str | None,
    sop_uid: str | None,
) -> list[tuple[int, StoredInstance]]:
    sql, params = _scoped_instances_sql(
        _INSTANCE_COLUMNS, partition, study_uid, series_uid, sop_uid
    )
    return [(int(r[0]), stored_instance(r)) for r in conn.execute(sql, params)]


def list_instance_keys(
    conn: sqlite3.Connection,
    partition: str,
    study_uid: str,
    series_uid: str | None,
    sop_uid: str | None,
) -> list[tuple[int, InstanceKey]]:
    """Like `list_instances`, without decoding layouts (series metadata's hot path)."""
    sql, params = _scoped_instances_sql(
        "i.pk, i.partition, s.study_uid, se.series_uid, i.sop_uid",
        partition,
        study_uid,
        series_uid,
        sop_uid,
    )
    return [(int(r[0]), InstanceKey(r[1], r[2], r[3], r[4])) for r in conn.execute(sql, params)]


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


def events_since(conn: sqlite3.Connection, seq: int, limit: int) -> list[Event]:
    return [
        Event(
            type=r[1],
            partition=r[2],
            data=loads(r[3]),
            seq=int(r[0]),
            time=datetime.fromisoformat(r[4]),
        )
        for r in conn.execute(
            "SELECT seq, type, partition, data, time FROM outbox WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (seq, limit),
        )
    ]


def _remote_ae(r: _Row) -> RemoteAE:
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


def chunked(
    fetch: Callable[[Sequence[int]], dict[int, bytes]],
    listing: Sequence[tuple[int, T]],
    size: int,
) -> Iterator[tuple[T, bytes]]:
    """Yield listed instances with their documents, fetching `size` documents at a time."""
    for start in range(0, len(listing), size):
        part = listing[start : start + size]
        found = fetch([pk for pk, _ in part])
        for pk, inst in part:
            document = found.get(pk)
            if document is not None:  # deleted since the listing
                yield inst, document
