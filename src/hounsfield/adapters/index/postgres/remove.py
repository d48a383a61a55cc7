"""The write paths that remove rows on PostgreSQL: abort, sweep of orphaned pending rows, and
delete, each one unit of work (`connection.run_transaction`).

As with SQLite, blobs are never touched here: the caller deletes them after the transaction
committed, using the keys returned, so a crash leaves at worst an orphan blob, never a row
without its bytes (ADR 0002). A delete locks its study row first, as commits do, so a delete
and a commit of the same study take turns and the counts stay exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from hounsfield.adapters.index.postgres.batch import Conn, refresh_modalities, write_events
from hounsfield.adapters.index.sql.rows import dumps
from hounsfield.ports.index import DeletedInstances, Event


def abort_instances(conn: Conn, partition: str, sop_uids: Sequence[str]) -> None:
    conn.execute(
        "DELETE FROM instances WHERE partition = %s AND sop_uid = ANY(%s) AND state = 'pending'",
        (partition, list(sop_uids)),
    )


def sweep_pending(conn: Conn, older_than: datetime) -> list[str]:
    """Pending rows of every partition (a maintenance task of the whole archive)."""
    rows = conn.execute(
        "DELETE FROM instances WHERE state = 'pending' AND created_at < %s RETURNING blob_key",
        (older_than,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def delete_instances(
    conn: Conn,
    partition: str,
    scope: tuple[str, str | None, str | None],
    events: Sequence[Event],
    now: datetime,
) -> DeletedInstances:
    """Delete committed instances of a study, series or one instance, then every parent left
    empty, fixing counts and computed attributes. Events are written only if something was
    deleted, so a repeated DELETE does not announce a second deletion."""
    study_uid, series_uid, sop_uid = scope
    study = conn.execute(
        "SELECT pk, patient_pk FROM studies WHERE partition = %s AND study_uid = %s FOR UPDATE",
        (partition, study_uid),
    ).fetchone()
    if study is None:
        return DeletedInstances()
    study_pk, patient_pk = int(study[0]), int(study[1])
    sql = (
        "SELECT i.pk, i.blob_key, i.size, i.series_pk FROM instances i"
        " JOIN series se ON se.pk = i.series_pk"
        " WHERE i.study_pk = %s AND i.partition = %s AND i.state = 'committed'"
    )
    params: list[object] = [study_pk, partition]
    if series_uid is not None:
        sql += " AND se.series_uid = %s"
        params.append(series_uid)
    if sop_uid is not None:
        sql += " AND i.sop_uid = %s"
        params.append(sop_uid)
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        return DeletedInstances()
    pks = [int(r[0]) for r in rows]
    copies = [
        str(key)
        for (key,) in conn.execute(
            "SELECT blob_key FROM derived_copies WHERE instance_pk = ANY(%s)", (pks,)
        )
    ]
    conn.execute("DELETE FROM instances WHERE pk = ANY(%s)", (pks,))
    per_series = Counter(int(r[3]) for r in rows)
    left = conn.execute(
        "UPDATE series SET num_instances = num_instances - d.n, updated_at = %s"
        " FROM unnest(%b::bigint[], %b::bigint[]) AS d(pk, n) WHERE series.pk = d.pk"
        " RETURNING series.pk, series.num_instances",
        (now, list(per_series), list(per_series.values())),
    ).fetchall()
    empty = [int(pk) for pk, count in left if count <= 0]
    if empty:
        conn.execute("DELETE FROM series WHERE pk = ANY(%s)", (empty,))
    row = conn.execute(
        "UPDATE studies SET num_instances = num_instances - %s, num_series = num_series - %s,"
        " size_bytes = size_bytes - %s, updated_at = %s WHERE pk = %s RETURNING num_instances",
        (len(rows), len(empty), sum(int(r[2]) for r in rows), now, study_pk),
    ).fetchone()
    removed_studies = 0
    if row is None or row[0] <= 0:
        conn.execute("DELETE FROM studies WHERE pk = %s", (study_pk,))
        removed_studies = 1
    else:
        if empty:
            refresh_modalities(conn, partition, [study_pk])
        classes = [
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT sop_class_uid FROM instances"
                " WHERE study_pk = %s AND state = 'committed' ORDER BY sop_class_uid",
                (study_pk,),
            )
        ]
        conn.execute(
            "UPDATE studies SET sop_classes = %s WHERE pk = %s", (dumps(classes), study_pk)
        )
    row = conn.execute(
        "UPDATE patients SET num_studies = num_studies - %s, num_series = num_series - %s,"
        " num_instances = num_instances - %s WHERE pk = %s RETURNING num_studies",
        (removed_studies, len(empty), len(rows), patient_pk),
    ).fetchone()
    if row is not None and row[0] <= 0:
        conn.execute("DELETE FROM patients WHERE pk = %s", (patient_pk,))
    write_events(conn, events, now)
    return DeletedInstances(blob_keys=[str(r[1]) for r in rows] + copies, instances=len(rows))
