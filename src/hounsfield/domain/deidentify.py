"""De-identification: PS3.15 Annex E, the Basic Application Level Confidentiality Profile.

Table E.1-1 gives, per attribute, the action of the Basic Profile and of each option; it is
kept as data in `_standard/deidentification.json`, generated from the standard's table by
`tools/gen_deid_profile.py`. The actions (PS3.15 E.3.1):

- D: replace with a non-zero length dummy value consistent with the VR;
- Z: replace with a zero length value (or a dummy: Patient ID becomes a pseudonym, so that a
  de-identified study is still searchable and one patient's studies stay together);
- X: remove; K: keep; U: replace a UID with another, consistently within the export;
- C: clean: dates are shifted by a per-patient offset (Retain Longitudinal Temporal
  Information with Modified Dates, E.3.6), free text has the identifying values found in the
  object itself (names, IDs, accession number, dates of birth) removed (Clean Descriptors,
  E.3.5, "where feasible": text that names a person or place not recorded elsewhere in the
  object is beyond a profile's reach), and anything else is emptied.
- Compound actions (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) take the action that keeps the attribute
  present with a valid value, since the IOD's attribute types are not known here: D when D
  is allowed, else Z (U for a UID; for a sequence marked U*, its items are kept with their
  UIDs replaced, so references between the objects of an export stay valid).

Options override the Basic Profile column by column (clean options first, then retain
options, which win). Private attributes are removed, and so are curve (50xx) and overlay
(60xx3000, 60xx4000) data. Attributes the table does not name are kept, and sequences are
walked so that nested UIDs and descriptors get the same treatment.

UIDs are remapped as `2.25.<integer>` (PS3.5 B.2) from an HMAC-SHA-256 of the source UID
under a secret salt: the same UID maps to the same new UID across every object of an
export (a study's series keep their relationships; references stay valid), nobody without the
salt can recompute or reverse the mapping, and another salt gives unrelated UIDs.

The result records Patient Identity Removed (0012,0062) = YES, De-identification Method
(0012,0063) and De-identification Method Code Sequence (0012,0064) with the profile and
option codes of PS3.16 CID 7050, and Longitudinal Temporal Information Modified (0028,0303).
An object whose Burned In Annotation (0028,0301) is YES is refused unless the caller accepts
it: its pixels may show the patient's name, which no header rule removes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from hounsfield.domain.errors import HounsfieldError

#: The options this archive implements (PS3.15 E.3), by their names in the profile data.
OPTIONS = (
    "retain-uids",
    "retain-full-dates",
    "retain-modified-dates",
    "retain-device-identity",
    "retain-institution-identity",
    "retain-patient-characteristics",
    "clean-descriptors",
)
#: Order in which option columns override the Basic Profile: later ones win.
_PRECEDENCE = (
    "clean-descriptors",
    "retain-modified-dates",
    "retain-full-dates",
    "retain-device-identity",
    "retain-institution-identity",
    "retain-patient-characteristics",
    "retain-uids",
)
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN", "CS", "AE", "UR"})
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_MAX_LENGTH = {"SH": 16, "CS": 16, "AE": 16, "LO": 64, "PN": 64}
_DUMMY_TEXT = "ANONYMIZED"
_PATIENT_ID = 0x00100020
_PATIENT_NAME = 0x00100010
_BURNED_IN = 0x00280301


#: Code meanings of PS3.16 CID 7050 "De-identification Method" (the Table E.1-1 column
#: headers are longer than the 64 characters Code Meaning (LO) holds).
CID_7050 = {
    "113100": "Basic Application Confidentiality Profile",
    "113103": "Clean Graphics Option",
    "113104": "Clean Structured Content Option",
    "113105": "Clean Descriptors Option",
    "113106": "Retain Longitudinal Temporal Information Full Dates Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
    "113109": "Retain Device Identity Option",
    "113110": "Retain UIDs Option",
    "113111": "Retain Safe Private Option",
    "113112": "Retain Institution Identity Option",
}


class DeidentificationError(HounsfieldError):
    """An object cannot be de-identified under the chosen options."""


class BurnedInAnnotationError(DeidentificationError):
    """Burned In Annotation (0028,0301) is YES and the options do not accept it."""


@dataclass(frozen=True, slots=True)
class Method:
    code: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Profile:
    """Table E.1-1 as data."""

    attributes: dict[int, dict[str, str]]
    groups: dict[str, dict[str, str]]
    private: dict[str, str]
    methods: dict[str, Method]

    def column_action(self, tag: int, options: Iterable[str]) -> str | None:
        """The table's action for a tag under the options (None: not in the table, keep)."""
        entry = self.attributes.get(tag)
        if entry is None:
            if tag >> 16 & 1:  # odd group: private attribute (PS3.5 7.8)
                entry = self.private
            else:
                entry = next(
                    (rule for mask, rule in self.groups.items() if _masked(mask, tag)), None
                )
        if entry is None:
            return None
        action = entry["basic"]
        chosen = set(options)
        for option in _PRECEDENCE:
            if option in chosen and option in entry:
                action = entry[option]
        return action


def _masked(mask: str, tag: int) -> bool:
    text = f"{tag:08X}"
    return all(m in "X" or m == t for m, t in zip(mask, text, strict=True))


@functools.cache
def profile() -> Profile:
    """The profile shipped with the package (domain/_standard/deidentification.json)."""
    text = resources.files("hounsfield.domain").joinpath("_standard/deidentification.json")
    data: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return Profile(
        attributes={int(tag, 16): entry for tag, entry in data["attributes"].items()},
        groups=data["groups"],
        private=data["private"],
        methods={
            k: Method(v["code"], CID_7050.get(v["code"], v["meaning"]))
            for k, v in data["methods"].items()
        },
    )


def resolve(action: str, vr: str) -> str:
    """One action of D, Z, X, K, C, U for a (possibly compound) table action."""
    if "/" not in action:
        return "U" if action == "D" and vr == "UI" else action
    choices = action.replace("*", "").split("/")
    if vr == "SQ" and "U" in choices:
        return "U"  # U*: keep the sequence, with the UIDs of its items replaced
    if vr == "UI" and ("U" in choices or "D" in choices):
        return "U"
    if "D" in choices:
        return "D"
    return "Z" if "Z" in choices else "X"


@dataclass(frozen=True, slots=True)
class Options:
    """The Annex E options of an export; `allow_burned_in` accepts objects whose Burned In
    Annotation is YES."""

    options: frozenset[str] = frozenset()
    allow_burned_in: bool = False

    @classmethod
    def of(cls, names: Iterable[str], *, allow_burned_in: bool = False) -> Options:
        chosen = frozenset(names)
        unknown = sorted(chosen - set(OPTIONS))
        if unknown:
            raise DeidentificationError(
                f"unknown de-identification option(s) {', '.join(unknown)}"
                f" (known: {', '.join(OPTIONS)})"
            )
        if {"retain-full-dates", "retain-modified-dates"} <= chosen:
            raise DeidentificationError(
                "retain-full-dates and retain-modified-dates exclude each other"
            )
        return cls(chosen, allow_burned_in)


@dataclass
class Deidentifier:
    """De-identifies datasets of one export: UIDs and pseudonyms are consistent across
    every dataset it handles (and across exports with the same salt)."""

    options: Options
    salt: bytes
    table: Profile = field(default_factory=profile)

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.salt, f"{kind}\0{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The new UID of a source UID (PS3.5 B.2: 2.25 and a 128-bit integer)."""
        return f"2.25.{int.from_bytes(self._digest('uid', original)[:16], 'big')}"

    def pseudonym(self, patient_id: str) -> str:
        return "ANON" + self._digest("patient", patient_id).hex()[:12].upper()

    def date_offset(self, patient_id: str) -> int:
        """Days every date of the patient moves back (Modified Dates): 1 to 3650."""
        return int.from_bytes(self._digest("dates", patient_id)[:4], "big") % 3650 + 1

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify `ds` in place and return it; raises BurnedInAnnotationError."""
        burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
        if burned == "YES" and not self.options.allow_burned_in:
            raise BurnedInAnnotationError(
                "the object has Burned In Annotation YES: its pixels may identify the patient"
            )
        patient_id = str(ds.get("PatientID", "") or "")
        walk = _Walk(self, patient_id, _identifying_values(ds))
        walk.dataset(ds)
        if _PATIENT_ID in ds:
            ds.PatientID = self.pseudonym(patient_id)
        if _PATIENT_NAME in ds:
            ds.PatientName = self.pseudonym(patient_id)
        self._record_method(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _record_method(self, ds: Dataset) -> None:
        chosen = [o for o in _PRECEDENCE if o in self.options.options]
        methods = [self.table.methods["basic"], *(self.table.methods[o] for o in chosen)]
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = [m.meaning[:64] for m in methods]
        items = []
        for method in methods:
            item = Dataset()
            item.CodeValue = method.code
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = method.meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        if "retain-full-dates" in self.options.options:
            ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
        elif "retain-modified-dates" in self.options.options:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        else:
            ds.LongitudinalTemporalInformationModified = "REMOVED"


def _identifying_values(ds: Dataset) -> list[str]:
    """Values of the object that identify the patient, to clean out of free text."""
    found: list[str] = []
    for keyword in (
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "AccessionNumber",
        "PatientBirthDate",
        "ReferringPhysicianName",
        "PatientMotherBirthName",
        "OtherPatientNames",
        "PatientAddress",
        "MedicalRecordLocator",
    ):
        value = ds.get(keyword)
        if value is None:
            continue
        for item in value if isinstance(value, MultiValue | list) else [value]:
            text = str(item)
            found.append(text)
            found.extend(part for part in re.split(r"[\^= ,]+", text) if len(part) >= 3)
    return sorted({v for v in found if len(v) >= 3}, key=len, reverse=True)


@dataclass
class _Walk:
    owner: Deidentifier
    patient_id: str
    identifying: list[str]

    def dataset(self, ds: Dataset) -> None:
        options = self.owner.options.options
        for element in list(ds):
            tag = int(element.tag)
            column = self.owner.table.column_action(tag, options)
            action = "K" if column is None else resolve(column, element.VR)
            if action == "X":
                del ds[element.tag]
            elif action == "K":
                if element.VR == "SQ":
                    self._items(element)
            elif action == "Z":
                _empty(element)
            elif action == "D":
                self._dummy(element)
            elif action == "U":
                self._remap(element)
            elif action == "C":
                self._clean(element)

    def _items(self, element: DataElement) -> None:
        for item in element.value or []:
            self.dataset(item)

    def _remap(self, element: DataElement) -> None:
        if element.VR == "SQ":
            self._items(element)
            return
        if element.VR != "UI":
            _empty(element)
            return
        values = element.value if element.VM > 1 else [element.value]
        new = [self.owner.uid(str(v)) for v in values if v]
        element.value = new if element.VM > 1 else (new[0] if new else "")

    def _dummy(self, element: DataElement) -> None:
        vr = element.VR
        if vr == "SQ":
            self._items(element)
        elif vr == "UI":
            self._remap(element)
        elif vr == "DA":
            element.value = "19000101"
        elif vr == "DT":
            element.value = "19000101000000"
        elif vr == "TM":
            element.value = "000000"
        elif vr == "AS":
            element.value = "000Y"
        elif vr in ("IS", "DS"):
            element.value = "0"
        elif vr in _NUMERIC_VRS:
            element.value = 0
        elif vr in _BINARY_VRS:
            element.value = b"\x00\x00"
        else:
            element.value = _DUMMY_TEXT[: _MAX_LENGTH.get(vr, 64)]

    def _clean(self, element: DataElement) -> None:
        vr = element.VR
        if vr == "SQ":
            self._items(element)
        elif vr in ("DA", "DT") and "retain-modified-dates" in self.owner.options.options:
            offset = self.owner.date_offset(self.patient_id)
            values = element.value if element.VM > 1 else [element.value]
            shifted = [_shift(str(v), offset) for v in values if v]
            element.value = shifted if element.VM > 1 else (shifted[0] if shifted else "")
        elif vr == "TM" and "retain-modified-dates" in self.owner.options.options:
            return  # a time of day is no date: shifting days leaves it as it is
        elif vr in _TEXT_VRS and vr != "PN":
            element.value = _without(element.value, self.identifying)
        else:
            _empty(element)


def _shift(value: str, days: int) -> str:
    """A DA (or the date of a DT) moved back by `days`; unparseable values become empty."""
    try:
        moved = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8])) - dt.timedelta(days)
    except (ValueError, IndexError):
        return ""
    return moved.strftime("%Y%m%d") + value[8:]


def _without(value: Any, identifying: list[str]) -> Any:
    if isinstance(value, MultiValue | list):
        return [_without(v, identifying) for v in value]
    text = str(value)
    for token in identifying:
        text = re.sub(re.escape(token), "", text, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", text).strip()


def _empty(element: DataElement) -> None:
    if element.VR == "SQ":
        element.value = Sequence([])
    elif element.VR in _BINARY_VRS:
        element.value = b""
    else:
        element.value = None
