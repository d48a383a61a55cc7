"""Storage Commitment Push Model (PS3.4 Annex J): the request and the event report.

An SCU asks, with N-ACTION (Action Type ID 1, "Request Storage Commitment"), that the archive
take responsibility for a list of SOP Instances (J.3.2). The archive answers the N-ACTION at
once, then reports with N-EVENT-REPORT (J.3.3): Event Type ID 1 when every instance is
committed, 2 when some failed, with the Referenced SOP Sequence of the committed ones and the
Failed SOP Sequence (each item with a Failure Reason, J.3.3.1.1) of the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hounsfield.domain.identifiers import is_valid_uid
from hounsfield.domain.model import DicomJson

#: Storage Commitment Push Model SOP Class and its well-known SOP Instance (PS3.4 J.3.1).
STORAGE_COMMITMENT_PUSH_MODEL = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_STORAGE_COMMITMENT = 1  # Action Type ID (J.3.2.1)
ALL_SUCCEEDED = 1  # Event Type ID (J.3.3.1)
SOME_FAILED = 2

TRANSACTION_UID = "00081195"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
RETRIEVE_AE_TITLE = "00080054"

#: Failure Reasons of PS3.4 J.3.3.1.1.
NO_SUCH_OBJECT_INSTANCE = 0x0112
PROCESSING_FAILURE = 0x0110
CLASS_INSTANCE_CONFLICT = 0x0119


class InvalidCommitmentRequestError(ValueError):
    """The N-ACTION Action Information is not a Storage Commitment request (J.3.2.1.1)."""


@dataclass(frozen=True, slots=True)
class Reference:
    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class CommitmentRequest:
    transaction_uid: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class CommitmentResult:
    transaction_uid: str
    committed: tuple[Reference, ...]
    failed: tuple[tuple[Reference, int], ...]

    @property
    def event_type(self) -> int:
        return SOME_FAILED if self.failed else ALL_SUCCEEDED


def _text(element: object) -> str:
    if not isinstance(element, dict):
        return ""
    values = element.get("Value") or []
    return str(values[0]).strip() if values else ""


def parse_commitment_request(action: DicomJson) -> CommitmentRequest:
    """Transaction UID and the Referenced SOP Sequence (J.3.2.1.1: both Type 1)."""
    transaction = _text(action.get(TRANSACTION_UID))
    if not is_valid_uid(transaction):
        raise InvalidCommitmentRequestError("Transaction UID (0008,1195) is missing or invalid")
    items = (action.get(REFERENCED_SOP_SEQUENCE) or {}).get("Value") or []
    if not items:
        raise InvalidCommitmentRequestError("Referenced SOP Sequence (0008,1199) is empty")
    references = []
    for item in items:
        sop_class = _text(item.get(REFERENCED_SOP_CLASS_UID)) if isinstance(item, dict) else ""
        sop = _text(item.get(REFERENCED_SOP_INSTANCE_UID)) if isinstance(item, dict) else ""
        if not (is_valid_uid(sop_class) and is_valid_uid(sop)):
            raise InvalidCommitmentRequestError(
                "each Referenced SOP Sequence item needs a SOP Class and Instance UID"
            )
        references.append(Reference(sop_class, sop))
    return CommitmentRequest(transaction, tuple(references))


def _reference_item(reference: Reference) -> DicomJson:
    return {
        REFERENCED_SOP_CLASS_UID: {"vr": "UI", "Value": [reference.sop_class_uid]},
        REFERENCED_SOP_INSTANCE_UID: {"vr": "UI", "Value": [reference.sop_instance_uid]},
    }


def event_information(result: CommitmentResult, retrieve_ae: str) -> DicomJson:
    """The Event Information of the N-EVENT-REPORT (PS3.4 Table J.3-2)."""
    report: DicomJson = {
        TRANSACTION_UID: {"vr": "UI", "Value": [result.transaction_uid]},
        RETRIEVE_AE_TITLE: {"vr": "AE", "Value": [retrieve_ae]},
    }
    if result.committed:
        report[REFERENCED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [_reference_item(r) for r in result.committed],
        }
    if result.failed:
        report[FAILED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [
                {**_reference_item(r), FAILURE_REASON: {"vr": "US", "Value": [reason]}}
                for r, reason in result.failed
            ],
        }
    return dict(sorted(report.items()))


def decide(
    request: CommitmentRequest, stored: dict[str, str], present: Sequence[str]
) -> CommitmentResult:
    """Commit what is stored with the same SOP class and whose object is present.

    `stored` maps SOP Instance UID to the stored SOP Class UID (from the index); `present`
    lists the instances whose bytes are in the blob store.
    """
    committed: list[Reference] = []
    failed: list[tuple[Reference, int]] = []
    available = set(present)
    for reference in request.references:
        stored_class = stored.get(reference.sop_instance_uid)
        if stored_class is None:
            failed.append((reference, NO_SUCH_OBJECT_INSTANCE))
        elif stored_class != reference.sop_class_uid:
            failed.append((reference, CLASS_INSTANCE_CONFLICT))
        elif reference.sop_instance_uid not in available:
            failed.append((reference, PROCESSING_FAILURE))
        else:
            committed.append(reference)
    return CommitmentResult(request.transaction_uid, tuple(committed), tuple(failed))
