"""Which attributes belong to which level of the DICOM information model.

The tables live in `_standard/levels.json` (data, not code): attributes of the Patient, Study and
Series Information Entities from the PS3.3 module tables, and the QIDO-RS default return
attributes of PS3.18 Tables 10.6.3-3/-4/-5. Everything not listed for a higher level is an
instance attribute. Specific Character Set belongs to every level, because each level's
attributes must be interpretable on their own (PS3.18 10.6.3.3.1).
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from pydicom.datadict import tag_for_keyword

from hounsfield.domain.model import DicomJson, Level

SPECIFIC_CHARACTER_SET = "00080005"
TIMEZONE_OFFSET = "00080201"
STUDY_INSTANCE_UID = "0020000D"
SERIES_INSTANCE_UID = "0020000E"
SOP_INSTANCE_UID = "00080018"
SOP_CLASS_UID = "00080016"
PATIENT_ID = "00100020"
PATIENT_NAME = "00100010"
ISSUER_OF_PATIENT_ID = "00100021"
MODALITY = "00080060"
NUMBER_OF_FRAMES = "00280008"

#: Attributes computed by the archive, never stored in objects (PS3.4 C.3.4, PS3.18 10.6.3).
MODALITIES_IN_STUDY = "00080061"
SOP_CLASSES_IN_STUDY = "00080062"
INSTANCE_AVAILABILITY = "00080056"
RETRIEVE_URL = "00081190"
RETRIEVE_AE_TITLE = "00080054"
NUMBER_OF_PATIENT_RELATED_STUDIES = "00201200"
NUMBER_OF_PATIENT_RELATED_SERIES = "00201202"
NUMBER_OF_PATIENT_RELATED_INSTANCES = "00201204"
NUMBER_OF_STUDY_RELATED_SERIES = "00201206"
NUMBER_OF_STUDY_RELATED_INSTANCES = "00201208"
NUMBER_OF_SERIES_RELATED_INSTANCES = "00201209"

COMPUTED_TAGS = frozenset(
    {
        MODALITIES_IN_STUDY,
        SOP_CLASSES_IN_STUDY,
        INSTANCE_AVAILABILITY,
        RETRIEVE_URL,
        RETRIEVE_AE_TITLE,
        NUMBER_OF_PATIENT_RELATED_STUDIES,
        NUMBER_OF_PATIENT_RELATED_SERIES,
        NUMBER_OF_PATIENT_RELATED_INSTANCES,
        NUMBER_OF_STUDY_RELATED_SERIES,
        NUMBER_OF_STUDY_RELATED_INSTANCES,
        NUMBER_OF_SERIES_RELATED_INSTANCES,
    }
)


def tag_hex(keyword: str) -> str:
    """The 8-hex-digit tag of a dictionary keyword (PS3.6), as used in DICOM JSON keys."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"unknown DICOM keyword {keyword!r} in the level tables")
    return f"{tag:08X}"


@functools.cache
def _tables() -> dict[str, object]:
    text = resources.files("hounsfield.domain").joinpath("_standard/levels.json").read_text()
    loaded: dict[str, object] = json.loads(text)
    return loaded


@functools.cache
def level_tags(level: str) -> frozenset[str]:
    """Tags of the attributes of one information entity: "patient", "study" or "series"."""
    keywords = _tables()[level]
    assert isinstance(keywords, list)
    return frozenset(tag_hex(k) for k in keywords)


@functools.cache
def default_return_tags(level: Level) -> tuple[str, ...]:
    """The QIDO-RS attributes returned without includefield (PS3.18 Table 10.6.3-3/-4/-5)."""
    defaults = _tables()["qido_default"]
    assert isinstance(defaults, dict)
    name = {Level.STUDY: "study", Level.SERIES: "series", Level.IMAGE: "instance"}.get(level)
    if name is None:  # patient level (C-FIND only): the patient attributes and counts
        return (SPECIFIC_CHARACTER_SET, *sorted(level_tags("patient")))
    return tuple(tag_hex(k) for k in defaults[name])


def split_by_level(dataset: DicomJson) -> tuple[DicomJson, DicomJson, DicomJson, DicomJson]:
    """Split one instance's DICOM JSON into patient, study, series and instance attributes.

    Specific Character Set and Timezone Offset From UTC are copied to every level that needs
    them to be read on its own.
    """
    patient_tags, study_tags, series_tags = (
        level_tags("patient"),
        level_tags("study"),
        level_tags("series"),
    )
    patient: DicomJson = {}
    study: DicomJson = {}
    series: DicomJson = {}
    instance: DicomJson = {}
    for tag, element in dataset.items():
        if tag in patient_tags:
            patient[tag] = element
        elif tag in study_tags:
            study[tag] = element
        elif tag in series_tags:
            series[tag] = element
        else:
            instance[tag] = element
    for shared in (SPECIFIC_CHARACTER_SET, TIMEZONE_OFFSET):
        if shared in dataset:
            patient[shared] = study[shared] = series[shared] = dataset[shared]
    return patient, study, series, instance


def first_value(dataset: DicomJson, tag: str) -> object | None:
    """The first value of an attribute, or None when absent or empty."""
    element = dataset.get(tag)
    if not element:
        return None
    values = element.get("Value")
    if not values:
        return None
    return values[0]  # type: ignore[no-any-return]


def text_value(dataset: DicomJson, tag: str) -> str | None:
    """The first value as text: PN as its Alphabetic group, numbers as their decimal form."""
    value = first_value(dataset, tag)
    if value is None:
        return None
    if isinstance(value, dict):
        alphabetic = value.get("Alphabetic")
        return str(alphabetic) if alphabetic is not None else None
    return str(value)
