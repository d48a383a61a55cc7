"""The job worker (services/jobs.py) on a real SQLite job store: outcomes, back-off, dead
letters, kinds, and lease renewal while a long job runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hounsfield.adapters.index.sqlite.store import SqliteIndex
from hounsfield.ports.jobs import Job, JobState, NewJob
from hounsfield.services.jobs import JobWorker, PermanentJobError, RetryPolicy

FAST = RetryPolicy(base_seconds=0.05, max_seconds=0.1, jitter=0.0)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    store = SqliteIndex(tmp_path / "index.db", durable=False)
    store.migrate()
    yield store
    store.close()


def enqueue(index: SqliteIndex, kind: str = "echo", **fields: object) -> int:
    [e] = index.jobs.enqueue([NewJob(kind=kind, partition="default", payload={}, **fields)])  # type: ignore[arg-type]
    return e.id


def state(index: SqliteIndex, job_id: int) -> JobState:
    job = index.jobs.get(job_id)
    assert job is not None
    return job.state


def test_success_failure_and_permanent_failure(index: SqliteIndex) -> None:
    seen: list[int] = []

    def ok(job: Job) -> None:
        seen.append(job.id)

    def broken(job: Job) -> None:
        raise ConnectionRefusedError("peer down")

    def hopeless(job: Job) -> None:
        raise PermanentJobError("unknown destination AE 'X'")

    worker = JobWorker(index.jobs, {"ok": ok, "broken": broken, "hopeless": hopeless}, retry=FAST)
    a, b, c = (
        enqueue(index, "ok"),
        enqueue(index, "broken", max_attempts=2),
        enqueue(index, "hopeless"),
    )
    assert worker.run_once() == 2  # concurrency 2: two claimed at a time
    worker.run_once()
    assert seen == [a]
    assert state(index, a) == JobState.SUCCEEDED
    assert state(index, c) == JobState.DEAD
    dead = index.jobs.get(c)
    assert (
        dead is not None and dead.attempts == 1 and dead.last_error == "unknown destination AE 'X'"
    )
    broken_job = index.jobs.get(b)
    assert broken_job is not None and broken_job.state == JobState.QUEUED
    assert broken_job.last_error == "ConnectionRefusedError: peer down"
    time.sleep(0.15)
    assert worker.run_once() == 1
    assert state(index, b) == JobState.DEAD  # second and last attempt


def test_a_worker_claims_only_the_kinds_it_handles(index: SqliteIndex) -> None:
    other = enqueue(index, "transcode")
    worker = JobWorker(index.jobs, {"echo": lambda job: None})
    assert worker.run_once() == 0
    assert state(index, other) == JobState.QUEUED


@pytest.mark.parametrize("stopping", [False, True], ids=["running", "stopping"])
def test_leases_are_renewed_while_a_long_job_runs(index: SqliteIndex, stopping: bool) -> None:
    """Renewed while the job runs, also after `stop` (SIGTERM): a worker that stops finishes
    its running job, and nobody else may take it meanwhile."""
    started, release = threading.Event(), threading.Event()

    def slow(job: Job) -> None:
        started.set()
        release.wait(10)

    worker = JobWorker(index.jobs, {"echo": slow}, lease_seconds=1.0, poll_seconds=0.05)
    job_id = enqueue(index)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        assert started.wait(5)
        if stopping:
            stop.set()
        time.sleep(2.5)  # well past the first lease
        assert index.jobs.claim("thief", ["echo"], 1, 30) == []
        running = index.jobs.get(job_id)
        assert running is not None and running.lease_owner == worker.name
    finally:
        release.set()
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert state(index, job_id) == JobState.SUCCEEDED


def test_retry_policy_doubles_and_caps() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=60, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [5, 10, 20, 40, 60, 60]
    jittered = RetryPolicy(base_seconds=10, max_seconds=100, jitter=0.2)
    assert all(8 <= jittered.delay(1) <= 12 for _ in range(50))
