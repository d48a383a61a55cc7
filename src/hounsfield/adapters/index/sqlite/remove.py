"""The write paths that remove rows: abort, sweep of orphaned pending rows, and delete.

Like `write`, every function runs inside a transaction opened by the group committer. Blobs
are never touched here: the caller deletes them after the transaction committed, using the
keys returned, so a crash leaves at worst an orphan blob, never a row without its bytes.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence

from hounsfield.adapters.index.sql.rows import dumps
from hounsfield.adapters.index.sqlite.write import refresh_modalities, write_events
from hounsfield.ports.index import DeletedInstances, Event

_CHUNK = 500


def abort_instances(conn: sqlite3.Connection, partition: str, sop_uids: Sequence[str]) -> None:
    conn.executemany(
        "DELETE FROM instances WHERE partition = ? AND sop_uid = ? AND state = 'pending'",
        [(partition, uid) for uid in sop_uids],
    )


def sweep_pending(conn: sqlite3.Connection, older_than: float) -> list[str]:
    rows = conn.execute(
        "DELETE FROM instances WHERE state = 'pending' AND created_at < ? RETURNING blob_key",
        (older_than,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def delete_instances(
    conn: sqlite3.Connection,
    partition: str,
    scope: tuple[str, str | None, str | None],
    events: Sequence[Event],
    now: float,
) -> DeletedInstances:
    """Delete committed instances of a study, series or one instance, then every parent left
    empty, fixing counts and computed attributes. Events are written only if something was
    deleted, so a repeated DELETE does not announce a second deletion."""
    study_uid, series_uid, sop_uid = scope
    study = conn.execute(
        "SELECT pk, patient_pk FROM studies WHERE partition = ? AND study_uid = ?",
        (partition, study_uid),
    ).fetchone()
    if study is None:
        return DeletedInstances()
    study_pk, patient_pk = int(study[0]), int(study[1])
    sql = (
        "SELECT i.pk, i.blob_key, i.size, i.series_pk FROM instances i"
        " JOIN series se ON se.pk = i.series_pk"
        " WHERE i.study_pk = ? AND i.partition = ? AND i.state = 'committed'"
    )
    params: list[object] = [study_pk, partition]
    if series_uid is not None:
        sql += " AND se.series_uid = ?"
        params.append(series_uid)
    if sop_uid is not None:
        sql += " AND i.sop_uid = ?"
        params.append(sop_uid)
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        return DeletedInstances()
    pks = [int(r[0]) for r in rows]
    copies: list[str] = []
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        copies += [
            str(key)
            for (key,) in conn.execute(
                f"SELECT blob_key FROM derived_copies WHERE instance_pk IN ({marks})",  # noqa: S608
                chunk,
            )
        ]
        conn.execute(f"DELETE FROM instances WHERE pk IN ({marks})", chunk)  # noqa: S608
    per_series = Counter(int(r[3]) for r in rows)
    removed_series = 0
    for series_pk, count in per_series.items():
        left = conn.execute(
            "UPDATE series SET num_instances = num_instances - ?, updated_at = ? WHERE pk = ?"
            " RETURNING num_instances",
            (count, now, series_pk),
        ).fetchone()[0]
        if left <= 0:
            conn.execute("DELETE FROM series WHERE pk = ?", (series_pk,))
            removed_series += 1
    left = conn.execute(
        "UPDATE studies SET num_instances = num_instances - ?, num_series = num_series - ?,"
        " size_bytes = size_bytes - ?, updated_at = ? WHERE pk = ? RETURNING num_instances",
        (len(rows), removed_series, sum(int(r[2]) for r in rows), now, study_pk),
    ).fetchone()[0]
    removed_studies = 0
    if left <= 0:
        conn.execute("DELETE FROM studies WHERE pk = ?", (study_pk,))
        removed_studies = 1
    else:
        if removed_series:
            refresh_modalities(conn, study_pk)
        classes = [
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT sop_class_uid FROM instances"
                " WHERE study_pk = ? AND state = 'committed' ORDER BY sop_class_uid",
                (study_pk,),
            )
        ]
        conn.execute("UPDATE studies SET sop_classes = ? WHERE pk = ?", (dumps(classes), study_pk))
    studies_left = conn.execute(
        "UPDATE patients SET num_studies = num_studies - ?, num_series = num_series - ?,"
        " num_instances = num_instances - ? WHERE pk = ? RETURNING num_studies",
        (removed_studies, removed_series, len(rows), patient_pk),
    ).fetchone()[0]
    if studies_left <= 0:
        conn.execute("DELETE FROM patients WHERE pk = ?", (patient_pk,))
    write_events(conn, events, now)
    return DeletedInstances(blob_keys=[str(r[1]) for r in rows] + copies, instances=len(rows))
