"""Builders of domain objects for unit and contract tests: DICOM JSON built directly, no files.

`make_new_instance(study_uid=..., **overrides)` gives an index-ready `NewInstance`; keyword
overrides that are DICOM keywords set (or, with None, remove) attributes, the others replace
`NewInstance` fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import UTC, datetime
from typing import Any

import orjson
from pydicom.datadict import dictionary_VR, tag_for_keyword

from hounsfield.domain.levels import split_by_level
from hounsfield.domain.model import DicomJson, PixelLayout
from hounsfield.ports.index import NewInstance

ROOT = "1.2.826.0.1.3680043.10.1234.99."
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"

_counter = itertools.count(1)
_FIELDS = {f.name for f in dataclasses.fields(NewInstance)}


def new_uid() -> str:
    """A fresh UID, unique within the test session."""
    return f"{ROOT}{next(_counter)}"


def element(keyword: str, value: Any) -> dict[str, Any]:
    """A DICOM JSON element (PS3.18 F.2.2) for a keyword; a list gives several values, a PN
    string becomes {"Alphabetic": ...}, a dict is taken as the PN groups, None is empty."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    vr = str(dictionary_VR(tag)).split(" or ")[0]
    if value is None:
        return {"vr": vr}
    values = list(value) if isinstance(value, list | tuple) else [value]
    if vr == "PN":
        values = [v if isinstance(v, dict) else {"Alphabetic": v} for v in values]
    return {"vr": vr, "Value": values}


def dataset(**attributes: Any) -> DicomJson:
    """DICOM JSON from keywords; a None value leaves the attribute out."""
    out: DicomJson = {}
    for keyword, value in attributes.items():
        if value is not None:
            tag = tag_for_keyword(keyword)
            assert tag is not None, keyword
            out[f"{tag:08X}"] = element(keyword, value)
    return dict(sorted(out.items()))


def make_new_instance(
    partition: str = "default",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    patient_id: str | None = "PID-1",
    patient_name: str | None = "Doe^Jane",
    study_date: str | None = "20240115",
    modality: str | None = "CT",
    **overrides: Any,
) -> NewInstance:
    """An instance ready for `IndexStore.begin/commit`, split by level like ingest does."""
    fields = {k: v for k, v in overrides.items() if k in _FIELDS}
    attributes: dict[str, Any] = {
        "SpecificCharacterSet": "ISO_IR 192",
        "SOPClassUID": fields.get("sop_class_uid", CT_IMAGE_STORAGE),
        "SOPInstanceUID": sop_uid or new_uid(),
        "StudyInstanceUID": study_uid or new_uid(),
        "SeriesInstanceUID": series_uid or new_uid(),
        "PatientID": patient_id,
        "PatientName": patient_name,
        "PatientBirthDate": "19700101",
        "PatientSex": "F",
        "StudyDate": study_date,
        "StudyTime": "101500",
        "AccessionNumber": "ACC-1",
        "StudyID": "1",
        "ReferringPhysicianName": "Ref^Doctor",
        "StudyDescription": "Synthetic study",
        "Modality": modality,
        "SeriesNumber": 1,
        "SeriesDescription": "Synthetic series",
        "InstanceNumber": 1,
        "Rows": 16,
        "Columns": 16,
        "BitsAllocated": 16,
    }
    attributes.update({k: v for k, v in overrides.items() if k not in _FIELDS})
    data = dataset(**attributes)
    patient, study, series, instance = split_by_level(data)
    metadata = orjson.dumps(data)
    sop = data["00080018"]["Value"][0]
    study_value = data["0020000D"]["Value"][0]
    series_value = data["0020000E"]["Value"][0]
    built = NewInstance(
        partition=partition,
        study_uid=study_value,
        series_uid=series_value,
        sop_uid=sop,
        sop_class_uid=attributes["SOPClassUID"],
        transfer_syntax_uid=EXPLICIT_VR_LITTLE_ENDIAN,
        blob_key=f"{partition}/{study_value}/{series_value}/{sop}",
        size=1024 + len(metadata),
        sha256=hashlib.sha256(metadata).hexdigest(),
        patient_attrs=patient,
        study_attrs=study,
        series_attrs=series,
        instance_attrs=instance,
        metadata=metadata,
        pixel=PixelLayout(
            value_offset=512, value_length=512, encapsulated=False, frames=(((512, 512),),)
        ),
        bulk_ranges={"7FE00010": (512, 512)},
        received_at=datetime.now(UTC),
    )
    return dataclasses.replace(built, **fields) if fields else built
