"""Stable-series and stable-study detection in SQL, shared by both index adapters.

A series or study is *stable* when no instance has been committed to it for a quiet period
(DESIGN.md key idea 4: `SeriesStable`, `StudyStable`): routing, AI and notifications that
should see a whole study wait for it. Each commit moves the row's `updated_at`; `stable_at`
records the `updated_at` that was last announced, so a row is a candidate exactly when
`stable_at` is missing or older (the partial indexes of migration 0003 hold just those rows).
A study that receives more instances after being announced is announced again later.

Marking and the events are written in one transaction with the outbox, so an announcement
is never lost nor made twice, whichever replica's scanner runs it (PostgreSQL: rows are
locked with SKIP LOCKED, so concurrent scanners take disjoint rows).
"""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from hounsfield.adapters.index.sql.dialect import Connection, Dialect, marks
from hounsfield.domain import events
from hounsfield.ports.index import Event

Scope = Literal["series", "study"]


def mark_stable(
    d: Dialect, conn: Connection, scope: Scope, quiet_before: float, limit: int
) -> list[Event]:
    """Mark up to `limit` series or studies last changed before `quiet_before` (Unix time) as
    announced, and return their events (the caller appends them to the outbox)."""
    table = "studies" if scope == "study" else "series"
    columns = (
        "pk, partition, study_uid, num_series, num_instances"
        if scope == "study"
        else "pk, partition, study_pk, series_uid, num_instances, modality"
    )
    rows: Sequence[Any] = d.run(
        conn,
        f"SELECT {columns} FROM {table} WHERE (stable_at IS NULL OR stable_at < updated_at)"
        f" AND updated_at < ? ORDER BY updated_at LIMIT ?{d.lock_suffix}",
        (d.to_time(quiet_before), limit),
    ).fetchall()
    if not rows:
        return []
    pks = [row[0] for row in rows]
    d.run(
        conn,
        f"UPDATE {table} SET stable_at = updated_at WHERE pk IN ({marks(len(pks))})",
        pks,
    )
    if scope == "study":
        return [
            Event(
                type=events.STUDY_STABLE,
                partition=partition,
                data=events.study_stable_payload(study_uid, int(n_series), int(n_instances)),
            )
            for _, partition, study_uid, n_series, n_instances in rows
        ]
    study_pks = sorted({row[2] for row in rows})
    study_uids = dict(
        d.run(
            conn,
            f"SELECT pk, study_uid FROM studies WHERE pk IN ({marks(len(study_pks))})",
            study_pks,
        ).fetchall()
    )
    return [
        Event(
            type=events.SERIES_STABLE,
            partition=partition,
            data=events.series_stable_payload(
                study_uids[study_pk], series_uid, int(n_instances), modality
            ),
        )
        for _, partition, study_pk, series_uid, n_instances, modality in rows
    ]
