"""The write paths that remove rows, shared by both index adapters: abort, sweep of orphaned
pending rows, and delete (IndexStore.abort, sweep_pending, delete).

Every function runs inside the caller's write transaction. Blobs are never touched here: the
caller deletes them after the transaction committed, using the keys returned, so a crash
leaves at worst an orphan blob, never a row without its bytes (ADR 0002). A delete locks its
study row first (PostgreSQL; SQLite's single writer is the lock), as commits do, so a delete
and a commit of the same study take turns and the counts stay exact.
"""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from hounsfield.adapters.index.sql import derived
from hounsfield.adapters.index.sql.dialect import Connection, Dialect
from hounsfield.adapters.index.sql.rows import dumps
from hounsfield.adapters.index.sql.scope import narrowed
from hounsfield.ports.index import DeletedInstances

#: (Study Instance UID, Series Instance UID or None, SOP Instance UID or None) of a delete.
Scope = tuple[str, str | None, str | None]


def abort_instances(d: Dialect, conn: Connection, partition: str, sop_uids: Sequence[str]) -> None:
    """Drop the pending rows of an ingest that failed before its commit (DESIGN.md key idea 3)."""
    for condition, params in d.in_list("sop_uid", sop_uids):
        d.run(
            conn,
            f"DELETE FROM instances WHERE partition = ? AND {condition} AND state = 'pending'",
            [partition, *params],
        )


def sweep_pending(d: Dialect, conn: Connection, older_than: float) -> list[str]:
    """Pending rows of every partition begun before `older_than` (Unix time), removed; their
    blob keys are returned (a maintenance task of the whole archive)."""
    rows = d.run(
        conn,
        "DELETE FROM instances WHERE state = 'pending' AND created_at < ? RETURNING blob_key",
        (d.to_time(older_than),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def delete_instances(
    d: Dialect,
    conn: Connection,
    partition: str,
    scope: Scope,
    now: float,
    refresh_modalities: Callable[[int], None],
) -> DeletedInstances:
    """Delete committed instances of a study, series or one instance, then every parent left
    empty, fixing counts and computed attributes (PS3.4 C.3.4: Number of ... Related ...,
    SOPClassesInStudy; ModalitiesInStudy by `refresh_modalities(study_pk)`, the adapter's
    own). The caller appends its events to the outbox only if something was deleted, so a
    repeated DELETE does not announce a second deletion."""
    study_uid, series_uid, sop_uid = scope
    study = d.run(
        conn,
        f"SELECT pk, patient_pk FROM studies WHERE partition = ? AND study_uid = ?{d.row_lock}",
        (partition, study_uid),
    ).fetchone()
    if study is None:
        return DeletedInstances()
    study_pk, patient_pk = int(study[0]), int(study[1])
    narrow, extra = narrowed(series_uid, sop_uid)
    rows = d.run(
        conn,
        "SELECT i.pk, i.blob_key, i.size, i.series_pk FROM instances i"
        " JOIN series se ON se.pk = i.series_pk"
        f" WHERE i.study_pk = ? AND i.partition = ? AND i.state = 'committed'{narrow}",
        [study_pk, partition, *extra],
    ).fetchall()
    if not rows:
        return DeletedInstances()
    pks = [int(r[0]) for r in rows]
    copies = derived.blob_keys_of(d, conn, pks)
    for condition, chunk in d.in_list("pk", pks):
        d.run(conn, f"DELETE FROM instances WHERE {condition}", chunk)
    empty = _take_from_series(d, conn, Counter(int(r[3]) for r in rows), now)
    for condition, chunk in d.in_list("pk", empty):
        d.run(conn, f"DELETE FROM series WHERE {condition}", chunk)
    row = d.run(
        conn,
        "UPDATE studies SET num_instances = num_instances - ?, num_series = num_series - ?,"
        " size_bytes = size_bytes - ?, updated_at = ? WHERE pk = ? RETURNING num_instances",
        (len(rows), len(empty), sum(int(r[2]) for r in rows), d.to_time(now), study_pk),
    ).fetchone()
    removed_studies = 0
    if row is None or row[0] <= 0:
        d.run(conn, "DELETE FROM studies WHERE pk = ?", (study_pk,))
        removed_studies = 1
    else:
        if empty:
            refresh_modalities(study_pk)
        classes = [
            str(r[0])
            for r in d.run(
                conn,
                "SELECT DISTINCT sop_class_uid FROM instances"
                " WHERE study_pk = ? AND state = 'committed' ORDER BY sop_class_uid",
                (study_pk,),
            ).fetchall()
        ]
        d.run(conn, "UPDATE studies SET sop_classes = ? WHERE pk = ?", (dumps(classes), study_pk))
    row = d.run(
        conn,
        "UPDATE patients SET num_studies = num_studies - ?, num_series = num_series - ?,"
        " num_instances = num_instances - ? WHERE pk = ? RETURNING num_studies",
        (removed_studies, len(empty), len(rows), patient_pk),
    ).fetchone()
    if row is not None and row[0] <= 0:
        d.run(conn, "DELETE FROM patients WHERE pk = ?", (patient_pk,))
    return DeletedInstances(blob_keys=[str(r[1]) for r in rows] + copies, instances=len(rows))


def _take_from_series(
    d: Dialect, conn: Connection, removed: Mapping[int, int], now: float
) -> list[int]:
    """Take the removed instances off their series' counts; the series left empty, by pk.

    Where the driver binds arrays (PostgreSQL) one statement updates every series, as the
    commit path does; SQLite, in process, takes one statement per series."""
    if d.arrays:
        left = d.run(
            conn,
            "UPDATE series SET num_instances = num_instances - d.n, updated_at = ?"
            " FROM unnest(?::bigint[], ?::bigint[]) AS d(pk, n) WHERE series.pk = d.pk"
            " RETURNING series.pk, series.num_instances",
            (d.to_time(now), list(removed), list(removed.values())),
        ).fetchall()
    else:
        left = [
            (
                series_pk,
                d.run(
                    conn,
                    "UPDATE series SET num_instances = num_instances - ?, updated_at = ?"
                    " WHERE pk = ? RETURNING num_instances",
                    (count, d.to_time(now), series_pk),
                ).fetchone()[0],
            )
            for series_pk, count in removed.items()
        ]
    return [int(pk) for pk, count in left if count <= 0]
