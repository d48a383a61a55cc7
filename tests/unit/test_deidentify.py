"""PS3.15 Annex E de-identification: golden values per action (D, Z, X, K, C, U) on a dataset
with every attribute class, UID consistency across a multi-series study, the options, the
burned-in annotation rule and the recorded method (PS3.16 CID 7050)."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources

import pytest
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from hounsfield.domain.deidentify import (
    OPTIONS,
    BurnedInAnnotationError,
    DeidentificationError,
    Deidentifier,
    Options,
    profile,
    resolve,
)
from tests.builders import make_dataset

SALT = b"a secret salt"
UID_2_25 = re.compile(r"^2\.25\.[1-9][0-9]{0,38}$")


def every_class(**overrides: object) -> Dataset:
    """A CT image with an attribute of every action class of Table E.1-1."""
    ds = make_dataset(
        study_uid="1.2.3.4.1",
        series_uid="1.2.3.4.1.1",
        sop_uid="1.2.3.4.1.1.1",
        patient_id="MRN-12345",
        patient_name="Doe^Jane",
        study_date="20240115",
    )
    ds.ClinicalTrialSponsorName = "Acme Trials"  # D
    ds.DeviceSerialNumber = "SN-998877"  # X/Z/D -> D; K with Retain Device Identity
    ds.InstitutionName = "St. Example Hospital"  # X/Z/D -> D; K with Retain Institution Id.
    ds.InstitutionAddress = "1 Main Street"  # X; K with Retain Institution Identity
    ds.AdditionalPatientHistory = "Jane Doe had a fall"  # X; C with Clean Descriptors
    ds.ImageComments = "MRN-12345 follow-up"  # X; C
    ds.PatientAge = "054Y"  # X; K with Retain Patient Characteristics
    ds.PatientWeight = "61.5"
    ds.AcquisitionDateTime = "20240115101530"
    ds.FrameOfReferenceUID = "1.2.3.4.9"  # U
    ds.Manufacturer = "Vendor"  # not in the table: K
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.1.1.2"  # U inside a kept sequence
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00091010, "LO", "private value")  # private: X
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")  # private creator: X
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data: X
    ds.add_new(0x60004000, "LT", "overlay comment")  # overlay comments: X
    for key, value in overrides.items():
        setattr(ds, key, value)
    return ds


def deidentify(ds: Dataset, *options: str, salt: bytes = SALT) -> Dataset:
    return Deidentifier(Options.of(options), salt).apply(ds)


def test_basic_profile_golden_values_per_action() -> None:
    engine = Deidentifier(Options(), SALT)
    out = engine.apply(every_class())
    # D: a dummy value of the VR.
    assert out.ClinicalTrialSponsorName == "ANONYMIZED"
    assert out.DeviceSerialNumber == "ANONYMIZED"
    assert out.InstitutionName == "ANONYMIZED"
    # Z: present, empty (Type 2), Patient ID and Name as the export's pseudonym.
    assert out.AccessionNumber in (None, "")
    assert out.StudyDate in (None, "") and out.StudyTime in (None, "")
    assert out.PatientBirthDate in (None, "") and out.PatientSex in (None, "")
    assert out.PatientID == out.PatientName == engine.pseudonym("MRN-12345")
    assert re.fullmatch(r"ANON[0-9A-F]{12}", out.PatientID)
    # X: removed, with private attributes, overlays and attributes cleaned only by options.
    for keyword in (
        "InstitutionAddress",
        "AdditionalPatientHistory",
        "ImageComments",
        "PatientAge",
        "StudyDescription",
        "SeriesDescription",
    ):
        assert keyword not in out, keyword
    assert 0x00091010 not in out and 0x00090010 not in out
    assert 0x60003000 not in out and 0x60004000 not in out
    # K: what the table does not name.
    assert out.Manufacturer == "Vendor" and out.Modality == "CT"
    assert out.Rows == 16 and out.PixelData == every_class().PixelData
    # U: 2.25 UIDs from the salted HMAC, nested ones included.
    assert out.SOPInstanceUID == engine.uid("1.2.3.4.1.1.1")
    assert out.StudyInstanceUID == engine.uid("1.2.3.4.1")
    assert out.FrameOfReferenceUID == engine.uid("1.2.3.4.9")
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == engine.uid("1.2.3.4.1.1.2")
    assert out.ReferencedImageSequence[0].ReferencedSOPClassUID == out.SOPClassUID  # a class
    for uid in (out.SOPInstanceUID, out.StudyInstanceUID, out.SeriesInstanceUID):
        assert UID_2_25.match(uid) and len(uid) <= 64
    assert out.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    # Nothing of the patient is left anywhere in the header.
    text = json.dumps(out.to_json_dict(bulk_data_threshold=0, bulk_data_element_handler=str))
    for identifying in ("Doe", "Jane", "MRN-12345", "19700101", "Example", "SN-998877"):
        assert identifying not in text, identifying


def test_the_method_is_recorded() -> None:
    out = deidentify(every_class(), "retain-uids", "clean-descriptors")
    assert out.PatientIdentityRemoved == "YES"
    codes = [
        (i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM"), ("113105", "DCM"), ("113110", "DCM")]
    meanings = [i.CodeMeaning for i in out.DeidentificationMethodCodeSequence]
    assert meanings[0] == "Basic Application Confidentiality Profile"
    assert all(len(m) <= 64 for m in meanings)
    assert list(out.DeidentificationMethod) == meanings
    assert out.LongitudinalTemporalInformationModified == "REMOVED"


def test_clean_descriptors_removes_identifying_values_from_text() -> None:
    ds = every_class(StudyDescription="CT head for Doe Jane MRN-12345")
    out = deidentify(ds, "clean-descriptors")
    assert out.StudyDescription == "CT head for"  # C: cleaned, kept
    assert out.AdditionalPatientHistory == "had a fall"
    assert out.ImageComments == "follow-up"
    assert out.SeriesDescription == "Synthetic series"


def test_retain_full_dates_keeps_them() -> None:
    out = deidentify(every_class(), "retain-full-dates")
    assert out.StudyDate == "20240115" and out.StudyTime == "101500"
    assert out.AcquisitionDateTime == "20240115101530"
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_retain_modified_dates_shifts_every_date_of_a_patient_alike() -> None:
    engine = Deidentifier(Options.of(["retain-modified-dates"]), SALT)
    days = engine.date_offset("MRN-12345")
    assert 1 <= days <= 3650
    first = engine.apply(every_class())
    second = engine.apply(every_class(StudyDate="20240116"))
    import datetime as dt

    def date(text: str) -> dt.date:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date()

    assert (dt.date(2024, 1, 15) - date(first.StudyDate)).days == days
    assert (date(second.StudyDate) - date(first.StudyDate)).days == 1  # intervals survive
    assert first.AcquisitionDateTime[8:] == "101530"
    assert (dt.date(2024, 1, 15) - date(first.AcquisitionDateTime)).days == days
    assert first.StudyTime == "101500"
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"


def test_retain_uids_device_institution_and_patient_characteristics() -> None:
    out = deidentify(
        every_class(),
        "retain-uids",
        "retain-device-identity",
        "retain-institution-identity",
        "retain-patient-characteristics",
    )
    assert out.SOPInstanceUID == "1.2.3.4.1.1.1" and out.StudyInstanceUID == "1.2.3.4.1"
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4.1.1.2"
    assert out.DeviceSerialNumber == "SN-998877"
    assert out.InstitutionName == "St. Example Hospital"
    assert out.InstitutionAddress == "1 Main Street"
    assert out.PatientSex == "F" and out.PatientAge == "054Y" and out.PatientWeight == "61.5"
    assert out.PatientID != "MRN-12345"  # identity itself is never retained


def test_uids_are_consistent_across_a_multi_series_study() -> None:
    engine = Deidentifier(Options(), SALT)
    study = "1.2.3.7"
    originals: list[Dataset] = []
    for series in (1, 2):
        for number in (1, 2, 3):
            ds = make_dataset(
                study_uid=study,
                series_uid=f"{study}.{series}",
                sop_uid=f"{study}.{series}.{number}",
                instance_number=number,
            )
            ref = Dataset()
            ref.ReferencedSOPClassUID = ds.SOPClassUID
            ref.ReferencedSOPInstanceUID = f"{study}.1.1"  # every image refers to the first
            ds.ReferencedImageSequence = Sequence([ref])
            ds.FrameOfReferenceUID = f"{study}.99"
            originals.append(ds)
    outs = [engine.apply(copy.deepcopy(ds)) for ds in originals]
    assert len({o.StudyInstanceUID for o in outs}) == 1
    by_series: dict[str, set[str]] = {}
    for original, out in zip(originals, outs, strict=True):
        by_series.setdefault(original.SeriesInstanceUID, set()).add(out.SeriesInstanceUID)
    assert all(len(uids) == 1 for uids in by_series.values())
    assert len({next(iter(u)) for u in by_series.values()}) == 2
    assert len({o.SOPInstanceUID for o in outs}) == 6
    first = outs[0].SOPInstanceUID
    assert all(o.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first for o in outs)
    assert len({o.FrameOfReferenceUID for o in outs}) == 1
    # Deterministic per salt; another salt gives unrelated UIDs.
    again = Deidentifier(Options(), SALT).apply(copy.deepcopy(originals[0]))
    assert again.SOPInstanceUID == first
    other = Deidentifier(Options(), b"another salt").apply(copy.deepcopy(originals[0]))
    assert other.SOPInstanceUID != first and other.StudyInstanceUID != outs[0].StudyInstanceUID


def test_burned_in_annotation_is_refused_unless_accepted() -> None:
    with pytest.raises(BurnedInAnnotationError):
        deidentify(every_class(BurnedInAnnotation="YES"))
    accepted = Deidentifier(Options.of([], allow_burned_in=True), SALT)
    assert accepted.apply(every_class(BurnedInAnnotation="YES")).PatientIdentityRemoved == "YES"
    assert deidentify(every_class(BurnedInAnnotation="NO")).PatientIdentityRemoved == "YES"


def test_file_meta_follows_the_new_sop_instance_uid() -> None:
    ds = every_class()
    from pydicom.dataset import FileMetaDataset

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = deidentify(ds)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_options_are_checked() -> None:
    with pytest.raises(DeidentificationError, match="unknown"):
        Options.of(["retain-everything"])
    with pytest.raises(DeidentificationError, match="exclude"):
        Options.of(["retain-full-dates", "retain-modified-dates"])
    assert Options.of(OPTIONS[:2]).options == frozenset(OPTIONS[:2])


def test_compound_actions_resolve_to_a_valid_value() -> None:
    assert resolve("X/Z", "LO") == "Z"
    assert resolve("X/D", "LO") == "D"
    assert resolve("Z/D", "DA") == "D"
    assert resolve("X/Z/D", "LO") == "D"
    assert resolve("X/Z/U*", "UI") == "U" and resolve("X/Z/U*", "LO") == "Z"
    assert resolve("X/Z/U*", "SQ") == "U"  # the items are kept, their UIDs replaced
    assert resolve("D", "UI") == "U" and resolve("K", "LO") == "K"


def test_the_profile_table_is_the_standard_joined_with_the_dictionary() -> None:
    """Generated data (tools/gen_deid_profile.py): each attribute's keyword and VR are
    pydicom's, actions are Table E.1-1 codes, and the well-known rows are as the standard
    has them."""
    raw = json.loads(
        resources.files("hounsfield.domain")
        .joinpath("_standard/deidentification.json")
        .read_text(encoding="utf-8")
    )
    actions = {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
    assert len(raw["attributes"]) > 500
    for tag, entry in raw["attributes"].items():
        known = DicomDictionary.get(int(tag, 16))
        assert known is not None and known[4] == entry["keyword"] and known[0] == entry["vr"]
        assert {v for k, v in entry.items() if k not in ("keyword", "name", "vr")} <= actions
    table = profile()
    assert table.column_action(0x00100010, ()) == "Z"  # Patient's Name
    assert table.column_action(0x00080018, ()) == "U"  # SOP Instance UID
    assert table.column_action(0x00080018, ("retain-uids",)) == "K"
    assert table.column_action(0x00080020, ("retain-modified-dates",)) == "C"
    assert table.column_action(0x00091010, ()) == "X"  # private
    assert table.column_action(0x50001000, ()) == "X"  # curve data
    assert table.column_action(0x00080060, ()) is None  # Modality: not in the table
