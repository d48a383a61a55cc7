"""Encoding of stored values and assembly of the DICOM JSON rows that queries return.

A query row (PS3.4 C.6.1.1, PS3.18 10.6.3) holds the attributes of its level and of its
parents, plus attributes the archive computes (PS3.4 C.3.4): numbers of related entities,
ModalitiesInStudy, SOPClassesInStudy. The identifying UIDs are written from the indexed
columns, so what SQL filtered on and what the matcher confirms are the same strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from hounsfield.domain.levels import (
    MODALITIES_IN_STUDY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_CLASSES_IN_STUDY,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from hounsfield.domain.model import ByteRange, DicomJson, PixelLayout

_VALUE_KEYS = ("Value", "BulkDataURI", "InlineBinary")


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in the index")


def dumps(value: object) -> bytes:
    """Compact JSON (orjson); Decimal values of DS/IS become JSON numbers (PS3.18 F.2.3)."""
    return orjson.dumps(value, default=_default)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def merge_attrs(existing: DicomJson, new: DicomJson) -> bool:
    """Merge a later instance's level attributes into the stored ones, in place.

    Attributes already stored win (the first instance of a study defines it); new attributes
    are added, and so is a value for an attribute stored empty. Returns whether anything
    changed, so unchanged rows are not rewritten.
    """
    changed = False
    for tag, element in new.items():
        current = existing.get(tag)
        if current is None or (
            not any(k in current for k in _VALUE_KEYS) and any(k in element for k in _VALUE_KEYS)
        ):
            existing[tag] = element
            changed = True
    return changed


def encode_pixel(pixel: PixelLayout | None) -> bytes | None:
    """PixelLayout as [value_offset, value_length, encapsulated, [[[off, len], ...], ...]]."""
    if pixel is None:
        return None
    return orjson.dumps([pixel.value_offset, pixel.value_length, pixel.encapsulated, pixel.frames])


def decode_pixel(data: bytes | None) -> PixelLayout | None:
    if data is None:
        return None
    offset, length, encapsulated, frames = orjson.loads(data)
    return PixelLayout(
        value_offset=offset,
        value_length=length,
        encapsulated=bool(encapsulated),
        frames=tuple(tuple((f[0], f[1]) for f in frame) for frame in frames),
    )


def encode_bulk(ranges: dict[str, ByteRange]) -> bytes:
    return orjson.dumps(ranges)


def decode_bulk(data: bytes | None) -> dict[str, ByteRange]:
    if not data:
        return {}
    loaded: dict[str, list[int]] = orjson.loads(data)
    return {path: (r[0], r[1]) for path, r in loaded.items()}


def _element(vr: str, values: list[Any]) -> dict[str, Any]:
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def _merged(*levels: DicomJson) -> DicomJson:
    """Parents first, so a child's attribute wins (Specific Character Set is in every level)."""
    row: DicomJson = {}
    for attrs in levels:
        row.update(attrs)
    return row


def patient_row(patient: DicomJson, studies: int, series: int, instances: int) -> DicomJson:
    """Patient level (PS3.4 C.6.1.1.2) with the Number of Patient Related attributes."""
    row = _merged(patient)
    row[NUMBER_OF_PATIENT_RELATED_STUDIES] = _element("IS", [studies])
    row[NUMBER_OF_PATIENT_RELATED_SERIES] = _element("IS", [series])
    row[NUMBER_OF_PATIENT_RELATED_INSTANCES] = _element("IS", [instances])
    return row


def study_row(
    patient: DicomJson,
    study: DicomJson,
    study_uid: str,
    series: int,
    instances: int,
    modalities: list[str],
    sop_classes: list[str],
) -> DicomJson:
    """Study level (PS3.4 C.6.1.1.3, PS3.18 Table 10.6.3-3) with its computed attributes."""
    row = _merged(patient, study)
    row[STUDY_INSTANCE_UID] = _element("UI", [study_uid])
    row[MODALITIES_IN_STUDY] = _element("CS", sorted(modalities))
    row[SOP_CLASSES_IN_STUDY] = _element("UI", sorted(sop_classes))
    row[NUMBER_OF_STUDY_RELATED_SERIES] = _element("IS", [series])
    row[NUMBER_OF_STUDY_RELATED_INSTANCES] = _element("IS", [instances])
    return row


def series_row(
    patient: DicomJson,
    study: DicomJson,
    series: DicomJson,
    study_uid: str,
    series_uid: str,
    instances: int,
) -> DicomJson:
    """Series level (PS3.4 C.6.1.1.4, PS3.18 Table 10.6.3-4)."""
    row = _merged(patient, study, series)
    row[STUDY_INSTANCE_UID] = _element("UI", [study_uid])
    row[SERIES_INSTANCE_UID] = _element("UI", [series_uid])
    row[NUMBER_OF_SERIES_RELATED_INSTANCES] = _element("IS", [instances])
    return row


def instance_row(
    patient: DicomJson,
    study: DicomJson,
    series: DicomJson,
    instance: DicomJson,
    uids: tuple[str, str, str, str],
) -> DicomJson:
    """Composite object instance level (PS3.4 C.6.1.1.5, PS3.18 Table 10.6.3-5);
    `uids` are the study, series, SOP instance and SOP class UIDs."""
    study_uid, series_uid, sop_uid, sop_class_uid = uids
    row = _merged(patient, study, series, instance)
    row[STUDY_INSTANCE_UID] = _element("UI", [study_uid])
    row[SERIES_INSTANCE_UID] = _element("UI", [series_uid])
    row[SOP_INSTANCE_UID] = _element("UI", [sop_uid])
    row[SOP_CLASS_UID] = _element("UI", [sop_class_uid])
    return row
