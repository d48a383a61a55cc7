"""`SqlJobStore`: the `JobStore` port on the index database (SQLite or PostgreSQL).

Each adapter hands it its own transaction runners, so jobs share the index's connections,
its group commit (SQLite) or pool and retries (PostgreSQL). Enqueueing and finishing are
durable commits; a claim or lease renewal is not (SQLite: `durable=False`), since losing one
in a power cut only makes the job due again, which at-least-once handlers already allow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from hounsfield.adapters.index.sql import jobs
from hounsfield.adapters.index.sql.dialect import Dialect
from hounsfield.ports.jobs import Enqueued, Job, JobFilter, JobState, NewJob

T = TypeVar("T")


class Writer(Protocol):
    def __call__(self, work: Callable[[Any], T], *, durable: bool = True) -> T: ...


class Reader(Protocol):
    def __call__(self, work: Callable[[Any], T]) -> T: ...


class SqlJobStore:
    def __init__(
        self,
        dialect: Dialect,
        write: Writer,
        read: Reader,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.d = dialect
        self._write = write
        self._read = read
        self._clock = clock

    def enqueue(self, jobs_: Sequence[NewJob]) -> list[Enqueued]:
        items = list(jobs_)
        if not items:
            return []
        return self._write(lambda c: jobs.enqueue(self.d, c, items, self._clock()))

    def claim(
        self, worker: str, kinds: Sequence[str], limit: int, lease_seconds: float
    ) -> list[Job]:
        names = list(kinds)
        return self._write(
            lambda c: jobs.claim(self.d, c, worker, names, limit, lease_seconds, self._clock()),
            durable=False,
        )

    def renew(self, worker: str, job_ids: Sequence[int], lease_seconds: float) -> list[int]:
        ids = list(job_ids)
        return self._write(
            lambda c: jobs.renew(self.d, c, worker, ids, lease_seconds, self._clock()),
            durable=False,
        )

    def succeed(self, worker: str, job_id: int) -> bool:
        return self._write(lambda c: jobs.succeed(self.d, c, worker, job_id, self._clock()))

    def fail(self, worker: str, job_id: int, error: str, retry_at: datetime | None) -> bool:
        return self._write(
            lambda c: jobs.fail(self.d, c, worker, job_id, error, retry_at, self._clock())
        )

    def get(self, job_id: int) -> Job | None:
        return self._read(lambda c: jobs.get(self.d, c, job_id))

    def find(self, where: JobFilter) -> list[Job]:
        return self._read(lambda c: jobs.listing(self.d, c, where))

    def counts(self) -> dict[tuple[str, JobState], int]:
        return self._read(lambda c: jobs.counts(self.d, c))

    def retry(self, job_id: int) -> bool:
        return self._write(lambda c: jobs.retry(self.d, c, job_id, self._clock()))

    def cancel(self, job_id: int) -> bool:
        return self._write(lambda c: jobs.cancel(self.d, c, job_id, self._clock()))

    def purge(self, finished_before: datetime) -> int:
        return self._write(lambda c: jobs.purge(self.d, c, finished_before))
