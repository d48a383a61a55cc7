"""The JobStore contract (ports/jobs.py) on every index adapter's job store, and stable-series /
stable-study marking (IndexStore.mark_stable): leases, retries, dead letters, idempotency,
priorities, concurrency between workers, and announcements that are neither lost nor doubled.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from hounsfield.domain import events
from hounsfield.ports.index import IndexStore
from hounsfield.ports.jobs import JobFilter, JobState, NewJob
from tests.factories import make_new_instance as make
from tests.factories import new_uid


def job(kind: str = "forward", **fields: object) -> NewJob:
    payload = fields.pop("payload", {"n": 1})
    return NewJob(kind=kind, partition="default", payload=payload, **fields)  # type: ignore[arg-type]


def test_a_job_is_claimed_once_then_succeeds(index: IndexStore) -> None:
    [enqueued] = index.jobs.enqueue([job(payload={"sop": "1.2.3", "n": [1, 2]})])
    assert enqueued.created
    [claimed] = index.jobs.claim("w1", ["forward"], 10, 30)
    assert (claimed.id, claimed.state, claimed.attempts) == (enqueued.id, JobState.RUNNING, 1)
    assert claimed.payload == {"sop": "1.2.3", "n": [1, 2]}
    assert claimed.lease_owner == "w1"
    assert claimed.lease_until is not None and claimed.lease_until > datetime.now(UTC)
    assert index.jobs.claim("w2", ["forward"], 10, 30) == []
    assert index.jobs.succeed("w1", claimed.id)
    done = index.jobs.get(claimed.id)
    assert done is not None and done.state == JobState.SUCCEEDED and done.lease_owner is None
    assert not index.jobs.succeed("w1", claimed.id)  # no longer held


def test_idempotency_key_returns_the_existing_job(index: IndexStore) -> None:
    first, second = index.jobs.enqueue([job(idempotency_key="k1"), job(idempotency_key="k1")])
    assert first.created and not second.created and first.id == second.id
    [third] = index.jobs.enqueue([job(idempotency_key="k1", payload={"other": True})])
    assert third.id == first.id and not third.created
    fetched = index.jobs.get(first.id)
    assert fetched is not None and fetched.payload == {"n": 1}
    assert len(index.jobs.find(JobFilter())) == 1


def test_claim_order_is_priority_then_due_time_and_kinds_are_honoured(
    index: IndexStore,
) -> None:
    low, high, other_kind = index.jobs.enqueue(
        [job(priority=0), job(priority=5), job(kind="stable", priority=9)]
    )
    later = datetime.now(UTC) + timedelta(hours=1)
    [delayed] = index.jobs.enqueue([job(priority=9, run_at=later)])
    claimed = index.jobs.claim("w", ["forward"], 10, 30)
    assert [c.id for c in claimed] == [high.id, low.id]
    assert delayed.id not in [c.id for c in claimed]
    assert [c.id for c in index.jobs.claim("w", ["stable"], 10, 30)] == [other_kind.id]


def test_concurrent_workers_never_share_a_job(index: IndexStore) -> None:
    index.jobs.enqueue([job(payload={"i": i}) for i in range(60)])
    taken: dict[str, list[int]] = {}

    def work(name: str) -> None:
        mine: list[int] = []
        while batch := index.jobs.claim(name, ["forward"], 4, 30):
            mine.extend(j.id for j in batch)
        taken[name] = mine

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in taken.values() for i in ids]
    assert len(every) == 60 and len(set(every)) == 60


def test_an_expired_lease_hands_the_job_to_another_worker(index: IndexStore) -> None:
    [enqueued] = index.jobs.enqueue([job()])
    [first] = index.jobs.claim("dead-worker", ["forward"], 1, 0.2)
    time.sleep(0.35)
    [again] = index.jobs.claim("w2", ["forward"], 1, 30)
    assert again.id == enqueued.id and again.attempts == 2 and again.lease_owner == "w2"
    assert not index.jobs.succeed("dead-worker", first.id)  # its lease is gone
    assert not index.jobs.fail("dead-worker", first.id, "late", None)
    assert index.jobs.succeed("w2", again.id)


def test_renew_extends_only_the_leases_still_held(index: IndexStore) -> None:
    a, b = index.jobs.enqueue([job(), job()])
    index.jobs.claim("w1", ["forward"], 2, 0.3)
    index.jobs.cancel(b.id)  # running jobs are not cancelled: still held
    assert index.jobs.renew("w1", [a.id, b.id], 30) == sorted([a.id, b.id])
    assert index.jobs.renew("w2", [a.id], 30) == []
    time.sleep(0.45)
    assert index.jobs.claim("w2", ["forward"], 2, 30) == []  # renewed, not expired


def test_failures_back_off_then_go_to_the_dead_letter_state(index: IndexStore) -> None:
    [enqueued] = index.jobs.enqueue([job(max_attempts=2)])
    [c1] = index.jobs.claim("w", ["forward"], 1, 30)
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    assert index.jobs.fail("w", c1.id, "connection refused", soon)
    queued = index.jobs.get(enqueued.id)
    assert queued is not None and queued.state == JobState.QUEUED
    assert queued.last_error == "connection refused"
    assert index.jobs.claim("w", ["forward"], 1, 30) == []  # not due yet
    time.sleep(0.4)
    [c2] = index.jobs.claim("w", ["forward"], 1, 30)
    assert c2.attempts == 2
    assert index.jobs.fail("w", c2.id, "still refused", None)
    dead = index.jobs.get(enqueued.id)
    assert dead is not None and dead.state == JobState.DEAD and dead.last_error == "still refused"
    assert index.jobs.claim("w", ["forward"], 1, 30) == []
    assert index.jobs.retry(enqueued.id)
    [c3] = index.jobs.claim("w", ["forward"], 1, 30)
    assert c3.id == enqueued.id and c3.attempts == 1


def test_a_lease_lost_on_the_last_attempt_is_dead_lettered(index: IndexStore) -> None:
    [enqueued] = index.jobs.enqueue([job(max_attempts=1)])
    index.jobs.claim("lost", ["forward"], 1, 0.2)
    time.sleep(0.35)
    assert index.jobs.claim("w", ["forward"], 1, 30) == []
    dead = index.jobs.get(enqueued.id)
    assert dead is not None and dead.state == JobState.DEAD
    assert dead.last_error is not None and "lease" in dead.last_error


def test_cancel_retry_find_counts_and_purge(index: IndexStore) -> None:
    a, b, c = index.jobs.enqueue([job(), job(kind="stable"), job()])
    assert index.jobs.cancel(a.id) and not index.jobs.cancel(a.id)
    [claimed] = index.jobs.claim("w", ["stable"], 1, 30)
    assert not index.jobs.cancel(claimed.id)  # running
    index.jobs.succeed("w", claimed.id)
    assert index.jobs.counts() == {
        ("forward", JobState.CANCELLED): 1,
        ("forward", JobState.QUEUED): 1,
        ("stable", JobState.SUCCEEDED): 1,
    }
    newest_first = index.jobs.find(JobFilter())
    assert [j.id for j in newest_first] == [c.id, b.id, a.id]
    assert [j.id for j in index.jobs.find(JobFilter(kind="forward"))] == [c.id, a.id]
    assert [j.id for j in index.jobs.find(JobFilter(state=JobState.CANCELLED))] == [a.id]
    page = index.jobs.find(JobFilter(limit=1))
    assert [j.id for j in page] == [c.id]
    assert [j.id for j in index.jobs.find(JobFilter(before_id=c.id, limit=5))] == [b.id, a.id]
    assert index.jobs.find(JobFilter(partition="other")) == []
    assert index.jobs.purge(datetime.now(UTC) + timedelta(seconds=1)) == 2  # a and b
    assert [j.id for j in index.jobs.find(JobFilter())] == [c.id]
    assert index.jobs.get(a.id) is None
    assert not index.jobs.retry(c.id)  # queued: nothing to retry


# -- stable series and studies ----------------------------------------------------------------


def _announced(index: IndexStore, quiet_before: datetime) -> set[tuple[str, str]]:
    found = [
        *index.mark_stable("series", quiet_before, 100),
        *index.mark_stable("study", quiet_before, 100),
    ]
    return {(e.type, e.data.get("seriesInstanceUID") or e.data["studyInstanceUID"]) for e in found}


def test_stable_series_and_studies_are_announced_once_per_change(index: IndexStore) -> None:
    study, s1, s2 = new_uid(), new_uid(), new_uid()
    instances = [make(study_uid=study, series_uid=s) for s in (s1, s1, s2)]
    index.begin(instances)
    index.commit(instances, [])
    assert _announced(index, datetime.now(UTC) - timedelta(seconds=60)) == set()
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert _announced(index, later) == {
        (events.SERIES_STABLE, s1),
        (events.SERIES_STABLE, s2),
        (events.STUDY_STABLE, study),
    }
    assert _announced(index, later) == set()
    outbox = index.events_since(0, 100)
    stable = [e for e in outbox if e.type == events.STUDY_STABLE]
    assert len(stable) == 1
    assert stable[0].data == {
        "studyInstanceUID": study,
        "numberOfStudyRelatedSeries": 2,
        "numberOfStudyRelatedInstances": 3,
    }
    series_events = {e.data["seriesInstanceUID"]: e.data for e in outbox if "modality" in e.data}
    assert series_events[s1]["numberOfSeriesRelatedInstances"] == 2
    assert series_events[s1]["modality"] == "CT"

    time.sleep(0.01)
    more = make(study_uid=study, series_uid=s2)
    index.begin([more])
    index.commit([more], [])
    assert _announced(index, datetime.now(UTC) + timedelta(seconds=1)) == {
        (events.SERIES_STABLE, s2),
        (events.STUDY_STABLE, study),
    }


def test_mark_stable_honours_the_limit_and_spans_partitions(index: IndexStore) -> None:
    instances = [make(partition=p, study_uid=new_uid()) for p in ("a", "b", "c")]
    index.begin(instances)
    index.commit(instances, [])
    later = datetime.now(UTC) + timedelta(seconds=1)
    first = index.mark_stable("study", later, 2)
    rest = index.mark_stable("study", later, 2)
    assert len(first) == 2 and len(rest) == 1
    assert {e.partition for e in first + rest} == {"a", "b", "c"}
