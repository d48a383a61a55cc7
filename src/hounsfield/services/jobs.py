"""Running durable jobs (DESIGN.md key idea 5): the worker loop, retries and the admin view.

A `JobWorker` claims due jobs of the kinds it has handlers for, runs each in a thread, renews
their leases while they run, and records the outcome: success; a retry after an exponential,
jittered back-off (so that a destination that was down is not hammered by every job at the
same instant when it returns); or the dead-letter state, after `max_attempts` or at once for a
`PermanentJobError`. Any number of workers may run, in `hounsfield serve` and in separate
`hounsfield worker` processes: the store's leases keep them from running one job twice
concurrently, and handlers are idempotent because a job whose worker dies is run again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hounsfield.ports.jobs import Job, JobFilter, JobState, JobStore

log = logging.getLogger(__name__)

#: A job handler: returns when the work is done, raises to fail the attempt.
JobHandler = Callable[[Job], None]


class PermanentJobError(Exception):
    """The job cannot succeed by being retried (an unknown destination, a deleted study):
    it goes to the dead-letter state at once, with this message."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before attempt n+1: base * 2^(n-1), capped, times a random factor in
    [1 - jitter, 1 + jitter]."""

    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempts: int) -> float:
        raw = min(self.base_seconds * float(2 ** max(attempts - 1, 0)), self.max_seconds)
        return raw * random.uniform(1 - self.jitter, 1 + self.jitter)


def worker_name() -> str:
    """Unique per worker instance: host, process and a random suffix (leases name it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobWorker:
    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, JobHandler],
        *,
        name: str | None = None,
        concurrency: int = 2,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a worker needs a concurrency of at least 1")
        self.store = store
        self.handlers = dict(handlers)
        self.name = name or worker_name()
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retry = retry or RetryPolicy()
        self._running: set[int] = set()
        self._running_lock = threading.Lock()

    # -- one job ---------------------------------------------------------------------------

    def execute(self, job: Job) -> JobState:
        """Run one claimed job and record its outcome; returns the state it was left in."""
        handler = self.handlers.get(job.kind)
        started = time.monotonic()
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for jobs of kind {job.kind!r}")
            handler(job)
        except PermanentJobError as exc:
            return self._fail(job, str(exc) or type(exc).__name__, permanent=True)
        except Exception as exc:
            log.debug(
                "job %d (%s) attempt %d failed", job.id, job.kind, job.attempts, exc_info=True
            )
            return self._fail(job, f"{type(exc).__name__}: {exc}", permanent=False)
        if not self.store.succeed(self.name, job.id):
            log.warning("job %d (%s) finished after its lease was lost", job.id, job.kind)
        log.info(
            "job %d (%s) succeeded in %.2f s (attempt %d)",
            job.id,
            job.kind,
            time.monotonic() - started,
            job.attempts,
        )
        return JobState.SUCCEEDED

    def _fail(self, job: Job, error: str, *, permanent: bool) -> JobState:
        if permanent or job.attempts >= job.max_attempts:
            self.store.fail(self.name, job.id, error, None)
            log.error(
                "job %d (%s) dead after %d attempt(s): %s", job.id, job.kind, job.attempts, error
            )
            return JobState.DEAD
        delay = self.retry.delay(job.attempts)
        self.store.fail(self.name, job.id, error, datetime.now(UTC) + timedelta(seconds=delay))
        log.warning(
            "job %d (%s) attempt %d/%d failed (%s); retry in %.0f s",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            error,
            delay,
        )
        return JobState.QUEUED

    # -- the loop --------------------------------------------------------------------------

    def run_once(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Claim what the free slots allow and run it to the end; returns the jobs run."""
        with self._running_lock:
            free = self.concurrency - len(self._running)
        if free <= 0 or not self.handlers:
            return 0
        claimed = self.store.claim(self.name, sorted(self.handlers), free, self.lease_seconds)
        if not claimed:
            return 0
        with self._running_lock:
            self._running.update(j.id for j in claimed)
        try:
            if pool is None or len(claimed) == 1:
                for job in claimed:
                    self._run_tracked(job)
            else:
                list(pool.map(self._run_tracked, claimed))
        finally:
            with self._running_lock:
                self._running.difference_update(j.id for j in claimed)
        return len(claimed)

    def _run_tracked(self, job: Job) -> None:
        try:
            self.execute(job)
        except Exception:
            # The store failed while recording the outcome: the lease expires and the job runs
            # again elsewhere, which handlers allow.
            log.exception("job %d (%s): could not record the outcome", job.id, job.kind)
        finally:
            with self._running_lock:
                self._running.discard(job.id)

    def _renew_leases(self, stop: threading.Event) -> None:
        """Renew the leases of running jobs every third of a lease, until stopped."""
        while not stop.wait(self.lease_seconds / 3):
            with self._running_lock:
                ids = sorted(self._running)
            if not ids:
                continue
            try:
                held = self.store.renew(self.name, ids, self.lease_seconds)
            except Exception:
                log.exception("could not renew job leases")
                continue
            if lost := set(ids) - set(held):
                log.warning("lost the lease of job(s) %s", sorted(lost))

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set (blocking; the caller owns the thread)."""
        log.info(
            "job worker %s: kinds %s, concurrency %d",
            self.name,
            sorted(self.handlers),
            self.concurrency,
        )
        # Leases are renewed until the running jobs have finished, not merely until `stop`:
        # a job still running after a SIGTERM must not be handed to another worker meanwhile.
        finished = threading.Event()
        renewer = threading.Thread(
            target=self._renew_leases, args=(finished,), name="job-leases", daemon=True
        )
        renewer.start()
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="job") as pool:
                while not stop.is_set():
                    try:
                        ran = self.run_once(pool)
                    except Exception:
                        log.exception("job worker %s: claim failed; retrying", self.name)
                        ran = 0
                    if not ran:
                        stop.wait(self.poll_seconds)
        finally:
            finished.set()
            renewer.join()


class JobService:
    """Jobs as the admin API and the CLI see them."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def find(self, where: JobFilter) -> list[Job]:
        return self.store.find(where)

    def get(self, job_id: int) -> Job | None:
        return self.store.get(job_id)

    def retry(self, job_id: int) -> bool:
        return self.store.retry(job_id)

    def cancel(self, job_id: int) -> bool:
        return self.store.cancel(job_id)

    def counts(self) -> dict[tuple[str, JobState], int]:
        return self.store.counts()

    def purge(self, older_than_seconds: float) -> int:
        return self.store.purge(datetime.now(UTC) - timedelta(seconds=older_than_seconds))


def job_document(job: Job) -> dict[str, object]:
    """The JSON view of a job (admin API, `hounsfield jobs --json`)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "partition": job.partition,
        "state": job.state.value,
        "priority": job.priority,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "runAt": job.run_at.isoformat(),
        "createdAt": job.created_at.isoformat(),
        "updatedAt": job.updated_at.isoformat(),
        "idempotencyKey": job.idempotency_key,
        "leaseOwner": job.lease_owner,
        "leaseUntil": None if job.lease_until is None else job.lease_until.isoformat(),
        "lastError": job.last_error,
        "payload": job.payload,
    }
