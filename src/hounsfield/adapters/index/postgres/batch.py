"""What the PostgreSQL write paths share: the connection type, time and partition helpers,
instance states, ModalitiesInStudy recomputation and the outbox append.

Every statement is scoped to one partition (DESIGN.md key idea 6), so batches are split by
partition first; a batch costs a fixed number of statements whatever its size (§4).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hounsfield.adapters.index.sql.rows import dumps
from hounsfield.ports.index import Event, NewInstance

Conn = psycopg.Connection[tuple[Any, ...]]

#: pg_advisory_xact_lock key taken before appending to the outbox ("HFOUTBOX").
OUTBOX_LOCK = int.from_bytes(b"HFOUTBOX", "big") - 2**63


def utc(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC (the index stores UTC), as in the SQLite adapter."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def by_partition(instances: Sequence[NewInstance]) -> dict[str, list[int]]:
    """Positions of the instances per partition: every statement is scoped to one."""
    groups: dict[str, list[int]] = defaultdict(list)
    for at, inst in enumerate(instances):
        groups[inst.partition].append(at)
    return groups


def instance_states(conn: Conn, partition: str, sops: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """(state, study UID, series UID) of the instances that exist, by SOP Instance UID."""
    return {
        r[0]: (r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT sop_uid, state, study_uid, series_uid FROM instances"
            " WHERE partition = %s AND sop_uid = ANY(%s)",
            (partition, list(sops)),
        )
    }


def refresh_modalities(conn: Conn, partition: str, study_pks: list[int]) -> None:
    """Recompute ModalitiesInStudy (PS3.4 C.6.1.1.3.2) of studies from their series; the
    studies are locked by the caller, so no series can be added meanwhile."""
    conn.execute("DELETE FROM study_modalities WHERE study_pk = ANY(%s)", (study_pks,))
    conn.execute(
        "INSERT INTO study_modalities (study_pk, partition, modality)"
        " SELECT DISTINCT study_pk, partition, modality FROM series"
        " WHERE partition = %s AND study_pk = ANY(%s) AND modality IS NOT NULL",
        (partition, study_pks),
    )
    conn.execute(
        "UPDATE studies s SET modalities = convert_to(coalesce((SELECT"
        " json_agg(m.modality ORDER BY m.modality)::text FROM study_modalities m"
        " WHERE m.study_pk = s.pk), '[]'), 'UTF8') WHERE s.pk = ANY(%s)",
        (study_pks,),
    )


def write_events(conn: Conn, events: Sequence[Event], now: datetime) -> None:
    """Append to the outbox in the caller's transaction (DESIGN.md key idea 4).

    Identity values are handed out at INSERT, not at COMMIT: two transactions could commit
    their events out of `seq` order, and a reader polling `events_since(seq)` would skip the
    late one forever. The advisory lock, held to the end of the transaction, makes appenders
    take turns for the short tail of their transactions, so `seq` order is commit order.
    """
    if not events:
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (OUTBOX_LOCK,))
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO outbox (type, partition, data, time) VALUES (%s, %s, %s, %s)",
            [
                (
                    e.type,
                    e.partition,
                    Jsonb(e.data, dumps=lambda v: dumps(v).decode()),
                    utc(e.time) if e.time else now,
                )
                for e in events
            ],
        )
