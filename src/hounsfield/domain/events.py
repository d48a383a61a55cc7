"""Event types written to the outbox with the transaction that causes them (DESIGN.md idea 4).

Payloads hold identifiers only, never PHI, so that events can be logged and relayed anywhere.
"""

from __future__ import annotations

INSTANCE_STORED = "hounsfield.instance.stored"
INSTANCE_DELETED = "hounsfield.instance.deleted"
SERIES_DELETED = "hounsfield.series.deleted"
STUDY_DELETED = "hounsfield.study.deleted"
#: Every study of one patient erased on request (GDPR Art. 17); data: the studies' UIDs only.
PATIENT_ERASED = "hounsfield.patient.erased"
#: No instance committed to the series / study for the configured quiet period.
SERIES_STABLE = "hounsfield.series.stable"
STUDY_STABLE = "hounsfield.study.stable"


def instance_payload(
    study_uid: str, series_uid: str, sop_uid: str, sop_class_uid: str
) -> dict[str, str]:
    return {
        "studyInstanceUID": study_uid,
        "seriesInstanceUID": series_uid,
        "sopInstanceUID": sop_uid,
        "sopClassUID": sop_class_uid,
    }


def series_stable_payload(
    study_uid: str, series_uid: str, instances: int, modality: str | None
) -> dict[str, object]:
    """A series with no new instance for the quiet period (issue 5, stable detection)."""
    return {
        "studyInstanceUID": study_uid,
        "seriesInstanceUID": series_uid,
        "numberOfSeriesRelatedInstances": instances,
        "modality": modality,
    }


def study_stable_payload(study_uid: str, series: int, instances: int) -> dict[str, object]:
    return {
        "studyInstanceUID": study_uid,
        "numberOfStudyRelatedSeries": series,
        "numberOfStudyRelatedInstances": instances,
    }
