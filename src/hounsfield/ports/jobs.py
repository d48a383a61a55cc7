"""The job port: durable background work with leases, retries and a dead-letter state.

Background work (forwarding, stable-study notifications, later transcoding and AI) is a job
row in the index database by default (DESIGN.md key idea 5), so SQLite alone is a complete
system and PostgreSQL serves any number of worker processes. A worker *claims* jobs: it
takes a lease that expires unless renewed, so a worker that dies leaves its jobs to others
after `lease_seconds`. Delivery is therefore at-least-once and handlers are idempotent.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class JobState(enum.StrEnum):
    QUEUED = "queued"  # waiting for `run_at`, or for a free worker
    RUNNING = "running"  # leased by a worker until `lease_until`
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # failed `max_attempts` times, or permanently: kept for inspection and retry
    CANCELLED = "cancelled"


#: States a job never leaves on its own (only an operator's retry moves dead/cancelled ones).
FINISHED = frozenset({JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue. Higher `priority` runs first; `run_at` delays the first attempt.

    `idempotency_key` makes enqueueing idempotent: a second job with the key of an existing
    one (in any state) is not created, and the existing job's id is returned. Consumers of
    at-least-once events derive the key from the event id, so a redelivered event does not
    queue the work twice.
    """

    kind: str
    partition: str
    payload: dict[str, Any]
    priority: int = 0
    idempotency_key: str | None = None
    max_attempts: int = 8
    run_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    partition: str
    payload: dict[str, Any]
    priority: int
    state: JobState
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The outcome of enqueueing one job: its id, and False when the key already existed."""

    id: int
    created: bool


@dataclass(frozen=True, slots=True)
class JobFilter:
    state: JobState | None = None
    kind: str | None = None
    partition: str | None = None
    #: Keyset paging: only jobs with an id lower than this (listings run newest first).
    before_id: int | None = None
    limit: int = 100


class JobStore(Protocol):
    """Durable job rows. Thread-safe and process-safe: claims never hand one job to two
    workers while its lease runs. Times are the store's clock (UTC)."""

    def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Insert the jobs in one durable transaction (idempotency keys honoured)."""

    def claim(
        self, worker: str, kinds: Sequence[str], limit: int, lease_seconds: float
    ) -> list[Job]:
        """Lease up to `limit` due jobs of these kinds, highest priority first, then oldest
        `run_at`: queued jobs whose `run_at` has passed, and running jobs whose lease expired
        (their worker died). Each claim counts as an attempt; a job whose lease expired after
        its last attempt goes to the dead state instead."""

    def renew(self, worker: str, job_ids: Sequence[int], lease_seconds: float) -> list[int]:
        """Extend the leases this worker still holds; return the ids it still holds."""

    def succeed(self, worker: str, job_id: int) -> bool:
        """Mark a held job done. False when the lease was lost (another worker may run it)."""

    def fail(self, worker: str, job_id: int, error: str, retry_at: datetime | None) -> bool:
        """Record a failed attempt: queued again at `retry_at`, or dead when it is None."""

    def get(self, job_id: int) -> Job | None: ...

    def find(self, where: JobFilter) -> list[Job]:
        """Jobs matching the filter, newest first."""

    def counts(self) -> dict[tuple[str, JobState], int]:
        """Number of jobs per (kind, state)."""

    def retry(self, job_id: int) -> bool:
        """Queue a dead or cancelled job again, now, with its attempts reset."""

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued job (a running one finishes its attempt first)."""

    def purge(self, finished_before: datetime) -> int:
        """Delete succeeded and cancelled jobs that finished before the cut-off."""
