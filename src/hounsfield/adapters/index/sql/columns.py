"""The indexed columns that SQL adapters store beside each level's DICOM JSON.

A query is answered in two steps (DESIGN.md key idea 2): SQL conditions on these columns pick
candidate rows, then the reference matcher (`domain.matching`) confirms every candidate on the
row's JSON. The SQL step may return too many rows but must never miss one, so each column holds
exactly the text the matcher compares, normalised the same way:

- strings lose the padding PS3.5 Table 6.2-1 declares insignificant (`strip_padding`);
- dates (DA) are the canonical "YYYYMMDD" of the one value the matcher can parse, including
  the ACR-NEMA "YYYY.MM.DD" form it accepts for stored values;
- person names live in side tables, one row per non-empty component group of every value,
  folded by `fold_name` so that both case-insensitive equality and case-insensitive wild cards
  (PS3.4 C.2.2.2.1, C.2.2.2.4) become index range scans.

A multi-valued attribute matches when any of its values does, which one column cannot express:
a row with more than one value in an indexed string or date attribute is flagged `irregular`
and the query path adds irregular rows back to the candidates (they are rare: these
attributes have VM 1).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from hounsfield.domain.keyvalues import strip_padding
from hounsfield.domain.levels import (
    MODALITY,
    PATIENT_ID,
    PATIENT_NAME,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    tag_hex,
)
from hounsfield.domain.model import DicomJson
from hounsfield.domain.temporal import parse_da

#: How a column's value derives from the attribute, and which matchers compile to SQL on it.
ColumnKind = Literal["uid", "text", "date", "time", "number"]
#: Table aliases used by every query: patients, studies, series, instances.
Alias = Literal["p", "s", "se", "i"]

STUDY_DATE = tag_hex("StudyDate")
STUDY_TIME = tag_hex("StudyTime")
ACCESSION_NUMBER = tag_hex("AccessionNumber")
STUDY_ID = tag_hex("StudyID")
STUDY_DESCRIPTION = tag_hex("StudyDescription")
REFERRING_PHYSICIAN_NAME = tag_hex("ReferringPhysicianName")
SERIES_NUMBER = tag_hex("SeriesNumber")
SERIES_DESCRIPTION = tag_hex("SeriesDescription")
PPS_START_DATE = tag_hex("PerformedProcedureStepStartDate")
PPS_START_TIME = tag_hex("PerformedProcedureStepStartTime")
INSTANCE_NUMBER = tag_hex("InstanceNumber")
NUMBER_OF_FRAMES = tag_hex("NumberOfFrames")
ISSUER_OF_PATIENT_ID = tag_hex("IssuerOfPatientID")


@dataclass(frozen=True, slots=True)
class Column:
    """One indexed column: which attribute (tag, VR) of which table it mirrors."""

    tag: str
    vr: str
    table: Alias
    name: str
    kind: ColumnKind


#: Columns whose value comes from the level attributes (UIDs come from `NewInstance`).
ATTRIBUTE_COLUMNS: dict[Alias, tuple[Column, ...]] = {
    "p": (Column(PATIENT_ID, "LO", "p", "patient_id", "text"),),
    "s": (
        Column(STUDY_DATE, "DA", "s", "study_date", "date"),
        Column(STUDY_TIME, "TM", "s", "study_time", "time"),
        Column(ACCESSION_NUMBER, "SH", "s", "accession_number", "text"),
        Column(STUDY_ID, "SH", "s", "study_id", "text"),
        Column(STUDY_DESCRIPTION, "LO", "s", "study_description", "text"),
    ),
    "se": (
        Column(MODALITY, "CS", "se", "modality", "text"),
        Column(SERIES_NUMBER, "IS", "se", "series_number", "number"),
        Column(SERIES_DESCRIPTION, "LO", "se", "series_description", "text"),
        Column(PPS_START_DATE, "DA", "se", "pps_start_date", "date"),
        Column(PPS_START_TIME, "TM", "se", "pps_start_time", "time"),
    ),
    "i": (Column(INSTANCE_NUMBER, "IS", "i", "instance_number", "number"),),
}

#: UID columns: their value is also written into the row JSON, so SQL and matcher agree.
UID_COLUMNS: tuple[Column, ...] = (
    Column(STUDY_INSTANCE_UID, "UI", "s", "study_uid", "uid"),
    Column(SERIES_INSTANCE_UID, "UI", "se", "series_uid", "uid"),
    Column(SOP_INSTANCE_UID, "UI", "i", "sop_uid", "uid"),
    Column(SOP_CLASS_UID, "UI", "i", "sop_class_uid", "uid"),
)

#: Person-name attributes indexed in name side tables, per owning table.
NAME_TAGS: dict[Alias, tuple[str, ...]] = {
    "p": (PATIENT_NAME,),
    "s": (REFERRING_PHYSICIAN_NAME,),
}

COLUMNS_BY_TAG: dict[str, Column] = {
    column.tag: column
    for column in (*UID_COLUMNS, *(c for cs in ATTRIBUTE_COLUMNS.values() for c in cs))
}

_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def fold_name(text: str) -> str:
    """The folded form of a person name under which the matcher's comparisons are prefix-safe.

    The matcher compares PN case-insensitively: `casefold()` equality for single values and
    `re.IGNORECASE` for wild cards (PS3.4 C.2.2.2.1 allows both). Folding must map every pair
    of strings either comparison calls equal to the same string, character by character (so
    that a wild card's literal prefix folds to a prefix of the folded name). `casefold()` does
    that except where `re.IGNORECASE` also equates characters that case folding keeps apart:
    the dotless i (U+0131) and the dotted capital I (U+0130, which folds to i + U+0307).
    Dropping combining marks and mapping U+0131 to "i" closes both gaps; the test suite checks
    every code point against `re`.
    """
    folded = text.casefold()
    if folded.isascii():
        return folded
    return "".join(c for c in folded if not unicodedata.combining(c)).replace("\u0131", "i")


def pn_normal(group: str) -> str:
    """A PN component group without padding and trailing empty components (PS3.5 6.2.1.1)."""
    return group.strip(" ").rstrip("^").rstrip(" ")


def name_folds(attrs: DicomJson, tag: str) -> set[str]:
    """Folded forms of every non-empty component group of every value of a PN attribute."""
    element = attrs.get(tag)
    folds: set[str] = set()
    if not isinstance(element, dict):
        return folds
    for value in element.get("Value") or ():
        if isinstance(value, dict):
            groups: Iterable[object] = (value.get(g) for g in _PN_GROUPS)
        elif isinstance(value, str):
            groups = value.split("=", 2)
        else:
            continue
        for group in groups:
            if isinstance(group, str) and (normal := pn_normal(group)):
                folds.add(fold_name(normal))
    return folds


def _texts(attrs: DicomJson, column: Column) -> list[str]:
    """The element's values as the matcher sees them: padding stripped, empty ones dropped."""
    element = attrs.get(column.tag)
    if not isinstance(element, dict):
        return []
    texts: list[str] = []
    for value in element.get("Value") or ():
        if isinstance(value, str):
            text = strip_padding(column.vr, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
        else:
            continue
        if text:
            texts.append(text)
    return texts


def _date(text: str) -> str | None:
    """Canonical YYYYMMDD of a stored DA the matcher can parse, else None (never matches)."""
    span = parse_da(text, lenient=True)
    if span is None:
        return None
    return text.strip().replace(".", "")


def _number(text: str) -> int | None:
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return None


def column_values(alias: Alias, attrs: DicomJson) -> tuple[dict[str, Any], bool]:
    """The indexed column values of one table's row, and whether the row is irregular."""
    values: dict[str, Any] = {}
    irregular = False
    for column in ATTRIBUTE_COLUMNS[alias]:
        texts = _texts(attrs, column)
        if column.kind == "date":
            dates = [d for d in (_date(t) for t in texts) if d is not None]
            values[column.name] = dates[0] if dates else None
            irregular = irregular or len(dates) > 1
        elif column.kind == "number":
            values[column.name] = _number(texts[0]) if texts else None
        else:
            values[column.name] = texts[0] if texts else None
            irregular = irregular or (column.kind == "text" and len(texts) > 1)
    return values, irregular


def first_text(attrs: DicomJson, tag: str, vr: str) -> str:
    """First non-empty value of a string attribute without padding, or ""."""
    texts = _texts(attrs, Column(tag, vr, "p", "", "text"))
    return texts[0] if texts else ""


def number_of_frames(attrs: DicomJson, frames_in_layout: int | None) -> int:
    """Number of Frames (0028,0008) if present, else what the pixel layout found (1 if any)."""
    texts = _texts(attrs, Column(NUMBER_OF_FRAMES, "IS", "i", "", "number"))
    if texts and (count := _number(texts[0])) is not None and count > 0:
        return count
    return frames_in_layout or 0
