"""Event types written to the outbox with the transaction that causes them (DESIGN.md idea 4).

Payloads hold identifiers only, never PHI, so that events can be logged and relayed anywhere.
"""

from __future__ import annotations

INSTANCE_STORED = "hounsfield.instance.stored"
INSTANCE_DELETED = "hounsfield.instance.deleted"
SERIES_DELETED = "hounsfield.series.deleted"
STUDY_DELETED = "hounsfield.study.deleted"


def instance_payload(
    study_uid: str, series_uid: str, sop_uid: str, sop_class_uid: str
) -> dict[str, str]:
    return {
        "studyInstanceUID": study_uid,
        "seriesInstanceUID": series_uid,
        "sopInstanceUID": sop_uid,
        "sopClassUID": sop_class_uid,
    }
