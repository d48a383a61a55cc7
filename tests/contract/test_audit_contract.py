"""The audit trail on every index adapter: append in order, chained, searchable, verifiable,
append-only, and one chain under concurrent writers."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from hounsfield.domain import audit as a
from hounsfield.domain.audit import ChainState, verify_chain
from hounsfield.ports.audit import AuditFilter
from hounsfield.ports.index import IndexStore
from hounsfield.services.audit import Actor, AuditService

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def service(index: IndexStore) -> AuditService:
    return AuditService(index.audit, source_id="ARCHIVE")


def stored(svc: AuditService, user: str, study: str, when: datetime) -> a.AuditMessage:
    message = svc.instances_stored(
        Actor(user, "10.1.2.3"), "default", {study: {"1.2.3": 1}}, a.Outcome.SUCCESS
    )
    return _at(message, when)


def _at(message: a.AuditMessage, when: datetime) -> a.AuditMessage:
    import dataclasses

    patient = a.patient("PID-" + message.study_uids[0][-1])
    return dataclasses.replace(message, time=when, objects=(patient, *message.objects))


def test_append_find_and_verify(index: IndexStore) -> None:
    svc = service(index)
    index.audit.append([stored(svc, "alice", "1.2.1", T0)])
    index.audit.append(
        [
            stored(svc, "bob", "1.2.2", T0 + timedelta(hours=1)),
            svc.query(Actor("alice"), "default", b"?PatientID=X", "/studies", a.Outcome.SUCCESS),
        ]
    )
    everything = index.audit.find(AuditFilter())
    assert [r.seq for r in everything] == [3, 2, 1]
    assert everything[0].event_type == "query"
    assert [r.user_id for r in index.audit.find(AuditFilter(user_id="bob"))] == ["bob"]
    assert [r.seq for r in index.audit.find(AuditFilter(study_uid="1.2.1"))] == [1]
    assert [r.seq for r in index.audit.find(AuditFilter(patient_id="PID-2"))] == [2]
    window = AuditFilter(since=a.timestamp(T0), until=a.timestamp(T0 + timedelta(minutes=30)))
    assert [r.seq for r in index.audit.find(window)] == [1]
    assert [r.seq for r in index.audit.find(AuditFilter(before_seq=3, limit=1))] == [2]
    assert [r.seq for r in index.audit.find(AuditFilter(event_type="query"))] == [3]
    chain = list(index.audit.records())
    assert chain[0].prev_hash == a.GENESIS and chain[1].prev_hash == chain[0].hash
    state = verify_chain(chain)
    assert state.breaks == [] and state.checked == 3
    assert svc.verify().checked == 3


def test_records_are_append_only(index: IndexStore) -> None:
    svc = service(index)
    index.audit.append([stored(svc, "alice", "1.2.1", T0)])

    def tamper(conn: object) -> None:
        conn.execute("UPDATE audit_log SET user_id = 'mallory'")  # type: ignore[attr-defined]

    with pytest.raises(Exception, match="append-only"):
        index.audit._write(tamper)  # type: ignore[attr-defined]


def test_concurrent_writers_keep_one_chain(index: IndexStore) -> None:
    svc = service(index)

    def write(n: int) -> None:
        for i in range(10):
            index.audit.append([stored(svc, f"user{n}", f"1.2.{i}", T0)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = verify_chain(index.audit.records(batch=7), ChainState())
    assert state.breaks == [] and state.checked == 40


def test_the_writer_batches_and_reports_overflow(index: IndexStore) -> None:
    svc = AuditService(index.audit, source_id="ARCHIVE", queue_size=5)
    # Fill the queue before the writer can drain it: the lock is held by this thread.
    svc._start()
    gate = threading.Event()
    original = index.audit.append

    def slow_append(messages: object) -> None:
        gate.wait(10)
        original(messages)  # type: ignore[arg-type]

    svc.trail = type("Slow", (), {"append": staticmethod(slow_append)})()  # type: ignore[assignment]
    for n in range(50):
        svc.record(stored(svc, "flood", f"1.3.{n % 10}", T0))
    assert svc.dropped > 0
    gate.set()
    assert svc.flush(20)
    svc.close()
    alerts = index.audit.find(AuditFilter(event_type="security-alert"))
    assert alerts and all("110133" in alert.xml for alert in alerts)  # Audit Recording Stopped
    lost = [re.search(r"(\d+) audit message\(s\) lost", alert.xml) for alert in alerts]
    assert sum(int(m[1]) for m in lost if m) == svc.dropped
    written = index.audit.find(AuditFilter(user_id="flood", limit=1000))
    assert len(written) == 50 - svc.dropped
    assert verify_chain(index.audit.records()).breaks == []
