"""The job queue in SQL, shared by the SQLite and PostgreSQL index adapters (ports/jobs.py).

The statements are the same on both back ends; what differs is carried by a `Dialect`
(sql/dialect.py): the placeholder, how times and JSON are stored, and the row lock of a claim
(PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers of several replicas never wait on each
other's rows; SQLite has one writer at a time, so its claims are serialised anyway).

Every function runs inside a transaction the caller opened and takes the time `now` (Unix
seconds) from it, so a unit of work that is retried recomputes nothing from stale clocks.
"""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hounsfield.adapters.index.sql.dialect import Connection, Dialect, marks
from hounsfield.ports.jobs import Enqueued, Job, JobFilter, JobState, NewJob

_COLUMNS = (
    "id, kind, partition, payload, priority, state, attempts, max_attempts, run_at,"
    " created_at, updated_at, idempotency_key, lease_owner, lease_until, last_error"
)


def _job(d: Dialect, row: Sequence[Any]) -> Job:
    return Job(
        id=int(row[0]),
        kind=row[1],
        partition=row[2],
        payload=d.from_json(row[3]),
        priority=int(row[4]),
        state=JobState(row[5]),
        attempts=int(row[6]),
        max_attempts=int(row[7]),
        run_at=d.from_time(row[8]),
        created_at=d.from_time(row[9]),
        updated_at=d.from_time(row[10]),
        idempotency_key=row[11],
        lease_owner=row[12],
        lease_until=None if row[13] is None else d.from_time(row[13]),
        last_error=row[14],
    )


def unix(moment: datetime) -> float:
    """Unix seconds of a datetime; a naive one is taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def enqueue(d: Dialect, conn: Connection, jobs: Sequence[NewJob], now: float) -> list[Enqueued]:
    results: list[Enqueued] = []
    for job in jobs:
        run_at = now if job.run_at is None else unix(job.run_at)
        row = d.run(
            conn,
            "INSERT INTO jobs (kind, partition, payload, priority, state, max_attempts, run_at,"
            " idempotency_key, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            (
                job.kind,
                job.partition,
                d.to_json(job.payload),
                job.priority,
                job.max_attempts,
                d.to_time(run_at),
                job.idempotency_key,
                d.to_time(now),
                d.to_time(now),
            ),
        ).fetchone()
        if row is not None:
            results.append(Enqueued(int(row[0]), True))
            continue
        existing = d.run(
            conn, "SELECT id FROM jobs WHERE idempotency_key = ?", (job.idempotency_key,)
        ).fetchone()
        results.append(Enqueued(int(existing[0]), False))
    return results


def claim(
    d: Dialect,
    conn: Connection,
    worker: str,
    kinds: Sequence[str],
    limit: int,
    lease_seconds: float,
    now: float,
) -> list[Job]:
    """Lease due jobs (see `JobStore.claim`). Queued and lease-expired candidates are found
    by two index scans (jobs_due, jobs_leased) and merged in claim order."""
    if not kinds or limit <= 0:
        return []
    in_kinds = f"kind IN ({marks(len(kinds))})"
    t_now = d.to_time(now)
    d.run(
        conn,
        "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL,"
        " last_error = 'the lease of the last attempt expired (worker lost)', updated_at = ?"
        f" WHERE state = 'running' AND lease_until < ? AND attempts >= max_attempts AND {in_kinds}",
        (t_now, t_now, *kinds),
    )
    order = " ORDER BY priority DESC, run_at, id LIMIT ?"
    queued = d.run(
        conn,
        f"SELECT id, priority, run_at FROM jobs WHERE state = 'queued' AND run_at <= ?"
        f" AND {in_kinds}{order}{d.lock_suffix}",
        (t_now, *kinds, limit),
    ).fetchall()
    expired = d.run(
        conn,
        f"SELECT id, priority, run_at FROM jobs WHERE state = 'running' AND lease_until < ?"
        f" AND {in_kinds}{order}{d.lock_suffix}",
        (t_now, *kinds, limit),
    ).fetchall()
    chosen = sorted(
        itertools.chain(queued, expired), key=lambda r: (-int(r[1]), d.from_time(r[2]), r[0])
    )[:limit]
    if not chosen:
        return []
    ids = [int(r[0]) for r in chosen]
    d.run(
        conn,
        "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?,"
        f" attempts = attempts + 1, updated_at = ? WHERE id IN ({marks(len(ids))})",
        (worker, d.to_time(now + lease_seconds), t_now, *ids),
    )
    rows = d.run(
        conn, f"SELECT {_COLUMNS} FROM jobs WHERE id IN ({marks(len(ids))})", ids
    ).fetchall()
    by_id = {int(row[0]): _job(d, row) for row in rows}
    return [by_id[i] for i in ids]


def renew(
    d: Dialect,
    conn: Connection,
    worker: str,
    job_ids: Sequence[int],
    lease_seconds: float,
    now: float,
) -> list[int]:
    if not job_ids:
        return []
    rows = d.run(
        conn,
        "UPDATE jobs SET lease_until = ? WHERE state = 'running' AND lease_owner = ?"
        f" AND id IN ({marks(len(job_ids))}) RETURNING id",
        (d.to_time(now + lease_seconds), worker, *job_ids),
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def succeed(d: Dialect, conn: Connection, worker: str, job_id: int, now: float) -> bool:
    cursor = d.run(
        conn,
        "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_until = NULL,"
        " last_error = NULL, updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?",
        (d.to_time(now), job_id, worker),
    )
    return cursor.rowcount == 1


def fail(
    d: Dialect,
    conn: Connection,
    worker: str,
    job_id: int,
    error: str,
    retry_at: datetime | None,
    now: float,
) -> bool:
    state = JobState.DEAD if retry_at is None else JobState.QUEUED
    run_at = d.to_time(now if retry_at is None else unix(retry_at))
    cursor = d.run(
        conn,
        "UPDATE jobs SET state = ?, run_at = ?, lease_owner = NULL, lease_until = NULL,"
        " last_error = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?",
        (state.value, run_at, error[:2000], d.to_time(now), job_id, worker),
    )
    return cursor.rowcount == 1


def get(d: Dialect, conn: Connection, job_id: int) -> Job | None:
    row = d.run(conn, f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else _job(d, row)


def listing(d: Dialect, conn: Connection, where: JobFilter) -> list[Job]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("state", None if where.state is None else where.state.value),
        ("kind", where.kind),
        ("partition", where.partition),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.before_id is not None:
        clauses.append("id < ?")
        params.append(where.before_id)
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = d.run(
        conn,
        f"SELECT {_COLUMNS} FROM jobs{condition} ORDER BY id DESC LIMIT ?",
        (*params, where.limit),
    ).fetchall()
    return [_job(d, row) for row in rows]


def counts(d: Dialect, conn: Connection) -> dict[tuple[str, JobState], int]:
    rows = d.run(conn, "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state").fetchall()
    return {(str(kind), JobState(state)): int(n) for kind, state, n in rows}


def retry(d: Dialect, conn: Connection, job_id: int, now: float) -> bool:
    cursor = d.run(
        conn,
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, updated_at = ?"
        " WHERE id = ? AND state IN ('dead', 'cancelled')",
        (d.to_time(now), d.to_time(now), job_id),
    )
    return cursor.rowcount == 1


def cancel(d: Dialect, conn: Connection, job_id: int, now: float) -> bool:
    cursor = d.run(
        conn,
        "UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'queued'",
        (d.to_time(now), job_id),
    )
    return cursor.rowcount == 1


def purge(d: Dialect, conn: Connection, finished_before: datetime) -> int:
    cursor = d.run(
        conn,
        "DELETE FROM jobs WHERE state IN ('succeeded', 'cancelled') AND updated_at < ?",
        (d.to_time(unix(finished_before)),),
    )
    return int(cursor.rowcount)
