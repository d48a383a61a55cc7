"""Study-level grants: share one study with one principal for reading (issue 6).

A grant names a partition, a Study Instance UID and the principal's subject (as
authentication reports it: a token's `sub`, or `api-key:<id>:<name>`). It lets that principal
read the study's DICOMweb resources even though its roles or partitions would not, until it
expires or is revoked; nothing else of the partition becomes visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StudyGrant:
    id: int
    partition: str
    study_uid: str
    subject: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None


class GrantStore(Protocol):
    def create(
        self,
        partition: str,
        study_uid: str,
        subject: str,
        created_by: str,
        expires_at: datetime | None,
    ) -> StudyGrant: ...

    def revoke(self, grant_id: int, partition: str) -> bool:
        """Delete the grant if it belongs to `partition` (admins revoke their own)."""

    def find(
        self, partition: str, subject: str | None = None, study_uid: str | None = None
    ) -> list[StudyGrant]:
        """The partition's grants, newest first, optionally for one subject or study."""

    def granted(self, subject: str, study_uid: str, now: datetime) -> list[str]:
        """The partitions in which `subject` may read study `study_uid` at `now`."""
