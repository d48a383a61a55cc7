"""The audit trail in SQL, shared by the SQLite and PostgreSQL index adapters (ports/audit.py).

An append reads the head of the chain (`audit_head`, one row) under a lock, links the new
records to it (domain/audit.py `chain`), inserts them and moves the head, all in the
caller's transaction: writers in several processes or replicas queue on the head row, so the
chain never forks. The lock is an UPDATE of the row, which both back ends hold until commit
(SQLite has one writer at a time anyway).
"""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from hounsfield.adapters.index.sql.dialect import Connection, Dialect
from hounsfield.domain.audit import AuditMessage, AuditRecord, chain
from hounsfield.ports.audit import AuditFilter

T = TypeVar("T")

_COLUMNS = (
    "seq, event_time, event_type, action, outcome, user_id, address, partition,"
    " patient_ids, study_uids, xml, prev_hash, hash"
)


def _record(row: Sequence[Any]) -> AuditRecord:
    return AuditRecord(
        seq=int(row[0]),
        event_time=str(row[1]),
        event_type=str(row[2]),
        action=str(row[3]),
        outcome=int(row[4]),
        user_id=str(row[5]),
        address=str(row[6]),
        partition=str(row[7]),
        patient_ids=tuple(json.loads(row[8])),
        study_uids=tuple(json.loads(row[9])),
        xml=str(row[10]),
        prev_hash=str(row[11]),
        hash=str(row[12]),
    )


def append(d: Dialect, conn: Connection, messages: Sequence[AuditMessage]) -> list[AuditRecord]:
    if not messages:
        return []
    d.run(conn, "UPDATE audit_head SET seq = seq WHERE id = 1")  # the chain's lock
    head = d.run(conn, "SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    records = list(chain(messages, int(head[0]), str(head[1])))
    rows = [
        (
            r.seq,
            r.event_time,
            r.event_type,
            r.action,
            r.outcome,
            r.user_id,
            r.address,
            r.partition,
            json.dumps(list(r.patient_ids)),
            json.dumps(list(r.study_uids)),
            r.xml,
            r.prev_hash,
            r.hash,
        )
        for r in records
    ]
    objects = [
        (kind, value, r.seq)
        for r in records
        for kind, value in sorted(
            {("P", v) for v in r.patient_ids} | {("S", v) for v in r.study_uids}
        )
    ]
    # One statement per table for the whole batch (psycopg pipelines executemany).
    cursor: Any = conn.cursor()  # type: ignore[attr-defined]
    cursor.executemany(
        d.sql(f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        rows,
    )
    if objects:
        cursor.executemany(
            d.sql("INSERT INTO audit_objects (kind, value, seq) VALUES (?, ?, ?)"), objects
        )
    last = records[-1]
    d.run(conn, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (last.seq, last.hash))
    return records


def find(d: Dialect, conn: Connection, where: AuditFilter) -> list[AuditRecord]:
    clauses: list[str] = []
    params: list[object] = []
    for clause, value in (
        ("event_time >= ?", where.since),
        ("event_time < ?", where.until),
        ("event_type = ?", where.event_type),
        ("user_id = ?", where.user_id),
        ("partition = ?", where.partition),
        ("seq < ?", where.before_seq),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    for kind, value in (("P", where.patient_id), ("S", where.study_uid)):
        if value is not None:
            clauses.append("seq IN (SELECT seq FROM audit_objects WHERE kind = ? AND value = ?)")
            params += [kind, value]
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = d.run(
        conn,
        f"SELECT {_COLUMNS} FROM audit_log{condition} ORDER BY seq DESC LIMIT ?",
        (*params, where.limit),
    ).fetchall()
    return [_record(row) for row in rows]


def page(d: Dialect, conn: Connection, after_seq: int, limit: int) -> list[AuditRecord]:
    rows = d.run(
        conn,
        f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    ).fetchall()
    return [_record(row) for row in rows]


def _page(d: Dialect, after_seq: int, limit: int, conn: Connection) -> list[AuditRecord]:
    return page(d, conn, after_seq, limit)


class Writer(Protocol):
    def __call__(self, work: Callable[[Any], T], *, durable: bool = True) -> T: ...


class Reader(Protocol):
    def __call__(self, work: Callable[[Any], T]) -> T: ...


class SqlAuditLog:
    """`AuditLog` on the index database, with the adapter's own transaction runners."""

    def __init__(self, dialect: Dialect, write: Writer, read: Reader) -> None:
        self.d = dialect
        self._write = write
        self._read = read

    def append(self, messages: Sequence[AuditMessage]) -> None:
        items = list(messages)
        if items:
            self._write(lambda c: append(self.d, c, items))

    def find(self, where: AuditFilter) -> list[AuditRecord]:
        return self._read(lambda c: find(self.d, c, where))

    def records(self, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditRecord]:
        position = after_seq
        while True:
            found = self._read(partial(_page, self.d, position, batch))
            yield from found
            if len(found) < batch:
                return
            position = found[-1].seq
