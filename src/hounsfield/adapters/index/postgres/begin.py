"""The first phase of ingest on PostgreSQL (DESIGN.md key idea 3): classify each instance and
record pending rows for the new ones, in three statements per partition whatever the batch
size. Pending rows are invisible to reads until `write.commit_instances` flips them.

Two replicas beginning the same instance at once both see it absent; the unique key and
`ON CONFLICT DO NOTHING` let exactly one insert it, and the other re-reads and reports it
in progress (or stored), as the contract requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hounsfield.adapters.index.postgres.batch import Conn, by_partition, instance_states, utc
from hounsfield.ports.index import BeginOutcome, NewInstance


def _classify(row: tuple[Any, ...], inst: NewInstance) -> BeginOutcome:
    state, study_uid, series_uid = row
    if state == "pending":
        return BeginOutcome.IN_PROGRESS
    if (study_uid, series_uid) == (inst.study_uid, inst.series_uid):
        return BeginOutcome.DUPLICATE
    return BeginOutcome.CONFLICT


def begin_instances(
    conn: Conn, instances: Sequence[NewInstance], now: datetime
) -> list[BeginOutcome]:
    """Classify each instance (as SQLite's `begin_instances`: PS3.3 C.12.1.1.1, C.7.3.1) and
    insert pending rows for the new ones, in three statements per partition."""
    outcomes: list[BeginOutcome] = [BeginOutcome.NEW] * len(instances)
    for partition, positions in by_partition(instances).items():
        batch = [instances[at] for at in positions]
        existing = instance_states(conn, partition, {i.sop_uid for i in batch})
        series_study: dict[str, str] = dict(
            conn.execute(
                "SELECT se.series_uid, s.study_uid FROM series se"
                " JOIN studies s ON s.pk = se.study_pk"
                " WHERE se.partition = %s AND s.partition = %s AND se.series_uid = ANY(%s)",
                (partition, partition, list({i.series_uid for i in batch})),
            ).fetchall()
        )
        new: list[int] = []
        seen: set[str] = set()
        for at, inst in zip(positions, batch, strict=True):
            row = existing.get(inst.sop_uid)
            if row is not None:
                outcomes[at] = _classify(row, inst)
            elif inst.sop_uid in seen:
                outcomes[at] = BeginOutcome.IN_PROGRESS
            elif series_study.get(inst.series_uid) not in (None, inst.study_uid):
                outcomes[at] = BeginOutcome.CONFLICT
            else:
                seen.add(inst.sop_uid)
                new.append(at)
        if not new:
            continue
        inserted = _insert_pending(conn, partition, [instances[at] for at in new], now)
        raced = [at for at in new if instances[at].sop_uid not in inserted]
        if raced:  # another transaction inserted them between our SELECT and INSERT
            states = instance_states(conn, partition, {instances[at].sop_uid for at in raced})
            for at in raced:
                row = states.get(instances[at].sop_uid)
                outcomes[at] = (
                    BeginOutcome.IN_PROGRESS if row is None else _classify(row, instances[at])
                )
    return outcomes


def _insert_pending(
    conn: Conn, partition: str, batch: list[NewInstance], now: datetime
) -> set[str]:
    rows = conn.execute(
        "INSERT INTO instances (partition, sop_uid, study_uid, series_uid, state,"
        " sop_class_uid, transfer_syntax_uid, blob_key, size, sha256, created_at, received_at)"
        " SELECT %s, u.sop, u.study, u.series, 'pending', u.cls, u.ts, u.blob, u.size, u.sha,"
        " %s, u.received FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],"
        " %b::text[], %b::text[], %b::bigint[], %b::text[], %b::timestamptz[])"
        " AS u(sop, study, series, cls, ts, blob, size, sha, received)"
        " ON CONFLICT (partition, sop_uid) DO NOTHING RETURNING sop_uid",
        (
            partition,
            now,
            [i.sop_uid for i in batch],
            [i.study_uid for i in batch],
            [i.series_uid for i in batch],
            [i.sop_class_uid for i in batch],
            [i.transfer_syntax_uid for i in batch],
            [i.blob_key for i in batch],
            [i.size for i in batch],
            [i.sha256 for i in batch],
            [utc(i.received_at) for i in batch],
        ),
    )
    return {str(r[0]) for r in rows}
