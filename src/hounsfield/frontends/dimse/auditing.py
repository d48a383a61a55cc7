"""Audit messages of the DIMSE front end (PS3.15 A.5.3), one association at a time.

- C-STORE: the instances an association stored are gathered by study and recorded as one
  DICOM Instances Transferred message (action Create) when the association ends, as IHE
  recommends (one message per association and study, not per instance: cheap on the hot path).
- C-FIND: a Query message whose participant object is the SOP class, with the identifier as
  the query and its transfer syntax as a detail (PS3.15 A.5.3.10).
- C-MOVE, C-GET: Begin Transferring DICOM Instances (A.5.3.2) with the studies requested and
  the move destination.

Who: the calling AE title as the user and the peer's address (no authentication exists on
DIMSE associations beyond the AE title).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hounsfield.domain.audit import Outcome
from hounsfield.domain.cfind import decode_identifier
from hounsfield.frontends.dimse.api import CommandField, Message
from hounsfield.services.audit import Actor, AuditService, outcome_of_dimse

log = logging.getLogger(__name__)

_STUDY_UID = "0020000D"


class AssociationAudit:
    """What one association did that the trail must know. `who` gives (calling AE, peer
    address, partition) once the association is negotiated."""

    def __init__(self, audit: AuditService, who: Callable[[], tuple[str, str, str]]) -> None:
        self.audit = audit
        self._who = who
        self._stored: dict[str, dict[str, int]] = {}
        self._failed = 0

    def _actor(self) -> tuple[Actor, str]:
        calling_ae, address, partition = self._who()
        return Actor(user_id=calling_ae or address, address=address), partition

    def stored(self, status: int, study_uid: str, sop_class_uid: str) -> None:
        if outcome_of_dimse(status) is Outcome.SUCCESS and study_uid:
            classes = self._stored.setdefault(study_uid, {})
            classes[sop_class_uid] = classes.get(sop_class_uid, 0) + 1
        else:
            self._failed += 1

    def request_done(self, message: Message, status: int) -> None:
        field = message.command_field
        if field not in (CommandField.C_FIND_RQ, CommandField.C_MOVE_RQ, CommandField.C_GET_RQ):
            return
        actor, partition = self._actor()
        outcome = outcome_of_dimse(status)
        sop_class = message.affected_sop_class_uid
        if field is CommandField.C_FIND_RQ:
            record = self.audit.query(actor, partition, message.dataset or b"", sop_class, outcome)
            self.audit.record(record)
            return
        studies: list[str] = []
        try:
            identifier = decode_identifier(message.dataset or b"", message.transfer_syntax)
            studies = [str(v) for v in identifier.get(_STUDY_UID, {}).get("Value", [])]
        except Exception:
            log.debug("could not read the identifier of an audited retrieve", exc_info=True)
        destination = message.move_destination if field is CommandField.C_MOVE_RQ else ""
        self.audit.record(
            self.audit.begin_transfer(actor, partition, studies, destination, outcome)
        )

    def close(self) -> None:
        """The association ended: record what it stored."""
        if not self._stored and not self._failed:
            return
        actor, partition = self._actor()
        outcome = Outcome.MINOR_FAILURE if self._failed else Outcome.SUCCESS
        description = f"{sum(sum(c.values()) for c in self._stored.values())} stored"
        if self._failed:
            description += f", {self._failed} refused"
        self.audit.record(
            self.audit.instances_stored(actor, partition, self._stored, outcome, description)
        )
        self._stored, self._failed = {}, 0
