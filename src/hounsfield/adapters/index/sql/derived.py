"""Derived copies (an HTJ2K re-encoding of an instance) in SQL, shared by both index adapters.

A copy belongs to one committed instance row and is deleted with it (ON DELETE CASCADE); the
instance delete collects the copies' blob keys first (`blob_keys_of`) so that the caller
removes their blobs with the instance's.
"""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

from collections.abc import Sequence

from hounsfield.adapters.index.sql.dialect import Connection, Dialect
from hounsfield.adapters.index.sql.rows import decode_pixel, encode_pixel
from hounsfield.ports.index import DerivedCopy

_INSTANCE = "SELECT pk FROM instances WHERE partition = ? AND sop_uid = ? AND state = 'committed'"


def put(
    d: Dialect, conn: Connection, partition: str, sop_uid: str, copy: DerivedCopy, now: float
) -> bool:
    row = d.run(conn, _INSTANCE + d.row_lock, (partition, sop_uid))
    found = row.fetchone()
    if found is None:
        return False
    d.run(
        conn,
        "INSERT INTO derived_copies (instance_pk, kind, transfer_syntax_uid, blob_key, size,"
        " sha256, pixel, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (instance_pk, kind) DO UPDATE SET"
        " transfer_syntax_uid = excluded.transfer_syntax_uid, blob_key = excluded.blob_key,"
        " size = excluded.size, sha256 = excluded.sha256, pixel = excluded.pixel,"
        " created_at = excluded.created_at",
        (
            found[0],
            copy.kind,
            copy.transfer_syntax_uid,
            copy.blob_key,
            copy.size,
            copy.sha256,
            encode_pixel(copy.pixel),
            d.to_time(now),
        ),
    )
    return True


def get(
    d: Dialect, conn: Connection, partition: str, sop_uid: str, kind: str
) -> DerivedCopy | None:
    row = d.run(
        conn,
        "SELECT c.kind, c.transfer_syntax_uid, c.blob_key, c.size, c.sha256, c.pixel"
        " FROM derived_copies c JOIN instances i ON i.pk = c.instance_pk"
        " WHERE i.partition = ? AND i.sop_uid = ? AND i.state = 'committed' AND c.kind = ?",
        (partition, sop_uid, kind),
    ).fetchone()
    if row is None:
        return None
    return DerivedCopy(
        kind=row[0],
        transfer_syntax_uid=row[1],
        blob_key=row[2],
        size=int(row[3]),
        sha256=row[4],
        pixel=decode_pixel(None if row[5] is None else bytes(row[5])),
    )


def blob_keys_of(d: Dialect, conn: Connection, instance_pks: Sequence[int]) -> list[str]:
    """Blob keys of the copies of these instances (called before the instances are deleted)."""
    keys: list[str] = []
    for condition, params in d.in_list("instance_pk", instance_pks):
        rows = d.run(conn, f"SELECT blob_key FROM derived_copies WHERE {condition}", params)
        keys.extend(str(r[0]) for r in rows.fetchall())
    return keys


def all_blob_keys(d: Dialect, conn: Connection) -> list[str]:
    return [str(r[0]) for r in d.run(conn, "SELECT blob_key FROM derived_copies").fetchall()]
