"""Study-level grants (ports/grants.py): creating, listing, revoking, and the check the HTTP
front end makes when a principal's own roles and partitions do not allow a study read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hounsfield.domain.identifiers import is_valid_uid
from hounsfield.domain.security import Principal, Role
from hounsfield.ports.grants import GrantStore, StudyGrant

#: Longest validity of a grant, in seconds (a viewer link is not a permanent account).
MAX_SECONDS = 90 * 86400


class GrantService:
    def __init__(self, store: GrantStore) -> None:
        self.store = store

    def create(
        self,
        partition: str,
        study_uid: str,
        subject: str,
        created_by: str,
        seconds: int | None = None,
    ) -> StudyGrant:
        if not is_valid_uid(study_uid):
            raise ValueError("'study' must be a Study Instance UID")
        if not subject.strip():
            raise ValueError("'subject' must name a principal (token sub or API key)")
        seconds = MAX_SECONDS if seconds is None else seconds
        if not 1 <= seconds <= MAX_SECONDS:
            raise ValueError(f"'expiresInSeconds' must be between 1 and {MAX_SECONDS}")
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
        return self.store.create(partition, study_uid, subject, created_by, expires)

    def find(
        self, partition: str, subject: str | None = None, study_uid: str | None = None
    ) -> list[StudyGrant]:
        return self.store.find(partition, subject, study_uid)

    def revoke(self, grant_id: int, partition: str) -> bool:
        return self.store.revoke(grant_id, partition)

    def principal_for(
        self, principal: Principal, study_uid: str, partition: str | None
    ) -> Principal | None:
        """The principal a granted study read runs as: a viewer of the grant's partition
        only; None without a live grant (in `partition` when the URL names one)."""
        partitions = self.store.granted(principal.subject, study_uid, datetime.now(UTC))
        if partition is not None:
            partitions = [p for p in partitions if p == partition]
        if not partitions:
            return None
        chosen = partitions[0]
        return Principal(
            principal.subject,
            frozenset({Role.VIEWER}),
            frozenset({chosen}),
            chosen,
            f"{principal.method}+grant",
        )


def grant_document(grant: StudyGrant) -> dict[str, object]:
    return {
        "id": grant.id,
        "partition": grant.partition,
        "study": grant.study_uid,
        "subject": grant.subject,
        "createdBy": grant.created_by,
        "createdAt": grant.created_at.isoformat(),
        "expiresAt": None if grant.expires_at is None else grant.expires_at.isoformat(),
    }
