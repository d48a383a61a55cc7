"""`ReadBursts`: one Instances Transferred message per burst of reads (PS3.15 A.5.3.7)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from hounsfield.domain import audit as a
from hounsfield.frontends.http.audit import ReadBursts
from hounsfield.ports.audit import AuditFilter
from hounsfield.services.audit import Actor, AuditService


class ListTrail:
    """An audit trail that keeps the messages it is given."""

    def __init__(self) -> None:
        self.messages: list[a.AuditMessage] = []

    def append(self, batch: Sequence[a.AuditMessage]) -> None:
        self.messages.extend(batch)

    def find(self, where: AuditFilter) -> list[a.AuditRecord]:
        raise NotImplementedError

    def records(self, after_seq: int = 0, batch: int = 1000) -> Iterator[a.AuditRecord]:
        raise NotImplementedError


def _studies(message: a.AuditMessage) -> list[str]:
    return list(message.study_uids)


def test_reads_gather_until_the_window_ends() -> None:
    trail = ListTrail()
    audit = AuditService(trail)
    viewer, other = Actor("viewer", "10.0.0.1"), Actor("other", "10.0.0.2")

    async def scenario() -> None:
        bursts = ReadBursts(audit, window=0.2)
        for _ in range(3):
            bursts.add(viewer, "default", ("1.2.3",))
        bursts.add(other, "default", ("1.2.3",))
        await asyncio.sleep(0.05)
        assert audit.flush() and trail.messages == []  # still gathering
        await asyncio.sleep(0.3)
        bursts.add(viewer, "default", ("1.2.3",))  # a new burst after the window
        bursts.close()

    asyncio.run(scenario())
    assert audit.flush()
    audit.close()
    users = sorted(m.requestor.user_id for m in trail.messages if m.requestor)
    assert users == ["other", "viewer", "viewer"]
    descriptions = sorted(m.outcome_description for m in trail.messages)
    assert descriptions == ["", "", "3 HTTP requests"]
    for message in trail.messages:
        assert message.kind is a.EventKind.INSTANCES_TRANSFERRED
        assert message.action is a.Action.READ and _studies(message) == ["1.2.3"]


def test_past_the_limit_the_oldest_burst_is_written_early() -> None:
    trail = ListTrail()
    audit = AuditService(trail)

    async def scenario() -> None:
        bursts = ReadBursts(audit, window=60, limit=2)
        for study in ("1", "2", "3"):
            bursts.add(Actor("viewer"), "default", (study,))
        assert audit.flush()
        assert [_studies(m) for m in trail.messages] == [["1"]]
        bursts.close()

    asyncio.run(scenario())
    assert audit.flush()
    audit.close()
    assert sorted(s for m in trail.messages for s in _studies(m)) == ["1", "2", "3"]
