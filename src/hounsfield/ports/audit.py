"""The audit port: where audit records are kept (PS3.15 A.5, DESIGN.md ports `AuditSink`).

The index adapters keep the trail in the index database, append-only and hash-chained
(domain/audit.py); other sinks (syslog, services/audit.py) only receive copies. `append`
takes messages, not records: the store assigns the sequence numbers and the chain links in the
same transaction that reads the head of the chain, so concurrent writers (several replicas on
PostgreSQL) never fork it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from hounsfield.domain.audit import AuditMessage, AuditRecord


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Search criteria; every given one must hold. Times are `domain.audit.timestamp` text."""

    since: str | None = None
    until: str | None = None
    event_type: str | None = None
    user_id: str | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    partition: str | None = None
    #: Keyset paging: only records with a lower sequence number (listings run newest first).
    before_seq: int | None = None
    limit: int = 100


class AuditSink(Protocol):
    """Somewhere audit messages go. Thread-safe."""

    def append(self, messages: Sequence[AuditMessage]) -> None:
        """Record the messages, in order, in one durable write."""


class AuditLog(AuditSink, Protocol):
    """The authoritative, queryable, verifiable audit trail."""

    def find(self, where: AuditFilter) -> list[AuditRecord]:
        """Records matching the filter, newest first."""

    def records(self, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record with a higher sequence number, oldest first (for verification)."""
