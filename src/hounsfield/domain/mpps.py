"""Modality Performed Procedure Step (PS3.4 Annex F): what N-CREATE and N-SET may do.

A modality creates a performed procedure step with N-CREATE in status "IN PROGRESS"
(F.7.2.1.1), updates it with N-SET while it is in progress, and ends it by setting
Performed Procedure Step Status to "COMPLETED" or "DISCONTINUED"; after that the step can no
longer be changed (F.7.2.2.2: Processing failure 0110 with Error ID A710).
"""

from __future__ import annotations

from hounsfield.domain.errors import HounsfieldError
from hounsfield.domain.model import DicomJson

#: Modality Performed Procedure Step SOP Class (PS3.4 F.7.1, PS3.6 Annex A).
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
PERFORMED_PROCEDURE_STEP_STATUS = "00400252"
IN_PROGRESS = "IN PROGRESS"
FINAL = frozenset({"COMPLETED", "DISCONTINUED"})

PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
INVALID_ATTRIBUTE_VALUE = 0x0106
MISSING_ATTRIBUTE = 0x0120
#: Error ID of "Performed Procedure Step Object may no longer be updated" (F.7.2.2.2).
NO_LONGER_UPDATABLE = 0xA710


class MppsError(HounsfieldError):
    """A refused N-CREATE or N-SET, with its status, Error Comment and optional Error ID."""

    def __init__(self, status: int, comment: str, error_id: int | None = None) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment[:64]
        self.error_id = error_id


def status_of(dataset: DicomJson) -> str | None:
    element = dataset.get(PERFORMED_PROCEDURE_STEP_STATUS)
    if element is None:
        return None
    values = element.get("Value") or []
    return str(values[0]).strip() if values else ""


def check_create(dataset: DicomJson) -> DicomJson:
    """N-CREATE: the status must be present and "IN PROGRESS" (F.7.2.1.1)."""
    status = status_of(dataset)
    if status is None:
        raise MppsError(MISSING_ATTRIBUTE, "Performed Procedure Step Status is missing")
    if status != IN_PROGRESS:
        raise MppsError(INVALID_ATTRIBUTE_VALUE, f"a new step must be {IN_PROGRESS}, not {status}")
    return dataset


def apply_set(current: DicomJson, modification: DicomJson) -> DicomJson:
    """N-SET: replace the given attributes while the step is in progress (F.7.2.2.2)."""
    if status_of(current) != IN_PROGRESS:
        raise MppsError(
            PROCESSING_FAILURE,
            "Performed Procedure Step Object may no longer be updated",
            NO_LONGER_UPDATABLE,
        )
    new_status = status_of(modification)
    if new_status is not None and new_status not in FINAL | {IN_PROGRESS}:
        raise MppsError(INVALID_ATTRIBUTE_VALUE, f"invalid status {new_status!r}")
    return dict(sorted({**current, **modification}.items()))
