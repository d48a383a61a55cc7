"""C-FIND identifiers to the query AST and back (PS3.4 C.4.1, C.6.1, C.6.2).

Identifiers are real encoded data sets (pydicom writes them, the walker reads them back), the
queries run on the real SQLite index, and what each response holds is checked key by key.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.domain.cfind import (
    FindRequest,
    decode_identifier,
    key_text,
    parse_find,
    response_identifier,
)
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.qrmodel import (
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    UNABLE_TO_PROCESS,
    Model,
    QueryRetrieveError,
)
from hounsfield.domain.query import (
    Range,
    SequenceMatch,
    SingleValue,
    UidList,
    Universal,
    Wildcard,
)
from hounsfield.ports.index import Event
from tests.factories import make_new_instance, new_uid

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
PR, SR = Model.PATIENT_ROOT, Model.STUDY_ROOT


def encode(ds: Dataset, implicit: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


def ident(level: str | None = "STUDY", charset: str | None = None, **keys: Any) -> DicomJson:
    """An identifier as a C-FIND SCU sends it, decoded as the SCP reads it."""
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    if level is not None:
        ds.QueryRetrieveLevel = level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid values are the point of some tests
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
        return decode_identifier(encode(ds), IMPLICIT)


def matcher_of(request: FindRequest, tag: str) -> object:
    found = [k.matcher for k in request.query.keys if k.tag == tag]
    return found[0] if found else Universal()


def refused(identifier: DicomJson, model: Model = SR, **options: Any) -> QueryRetrieveError:
    with pytest.raises(QueryRetrieveError) as caught:
        parse_find(identifier, model, **options)
    return caught.value


# --- identifiers: decoding ------------------------------------------------------------------


@pytest.mark.parametrize("implicit", [True, False])
def test_identifier_decodes_in_either_little_endian_syntax(implicit: bool) -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "Doe*"
    ds.StudyInstanceUID = ""
    data = decode_identifier(encode(ds, implicit), IMPLICIT if implicit else EXPLICIT)
    assert key_text(data["00100010"]) == "Doe*"
    assert "Value" not in data["0020000D"]


def test_unreadable_identifier_is_c000() -> None:
    with pytest.raises(QueryRetrieveError) as caught:
        decode_identifier(b"\x08\x00\x52\x00\xff\xff\xff\x7f", IMPLICIT)
    assert caught.value.status == UNABLE_TO_PROCESS


def test_specific_character_set_is_honoured() -> None:
    """Latin-1 bytes in the identifier are read as Latin-1 (PS3.5 6.1.2.3)."""
    data = ident(charset="ISO_IR 100", PatientName="Müller*")
    request = parse_find(data, SR)
    assert matcher_of(request, "00100010") == Wildcard("Müller*")
    assert request.character_set == ("ISO_IR 100",)


# --- level and hierarchy --------------------------------------------------------------------


def test_missing_level_is_a900_naming_the_element() -> None:
    error = refused(ident(level=None, PatientName="x"))
    assert error.status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert error.offending == ("00080052",)


@pytest.mark.parametrize("level", ["FOO", "FRAME"])
def test_unknown_level_is_a900(level: str) -> None:
    assert refused(ident(level=level)).status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS


def test_study_root_has_no_patient_level() -> None:
    assert refused(ident(level="PATIENT"), SR).offending == ("00080052",)
    assert parse_find(ident(level="PATIENT", PatientID=""), PR).level is Level.PATIENT


def test_patient_root_study_query_needs_the_patient_id() -> None:
    error = refused(ident(level="STUDY", StudyDate="20240101"), PR)
    assert error.offending == ("00100020",)
    request = parse_find(ident(level="STUDY", PatientID="P1", StudyDate=""), PR)
    assert matcher_of(request, "00100020") == SingleValue("P1")


@pytest.mark.parametrize(
    ("model", "level", "keys"),
    [
        (SR, "SERIES", {}),
        (SR, "IMAGE", {"StudyInstanceUID": "1.2.3"}),
        (PR, "SERIES", {"PatientID": "P1"}),
        (PR, "IMAGE", {"PatientID": "P1", "StudyInstanceUID": "1.2"}),
    ],
)
def test_missing_unique_key_above_the_level_is_a900(
    model: Model, level: str, keys: dict[str, str]
) -> None:
    assert refused(ident(level=level, **keys), model).status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS


def test_unique_key_above_the_level_must_be_single_valued() -> None:
    error = refused(ident(level="SERIES", StudyInstanceUID=["1.2", "1.3"]))
    assert error.offending == ("0020000D",)


def test_non_unique_key_above_the_level_is_a_return_key_only() -> None:
    """Hierarchical search: StudyDate at SERIES level may be returned, not matched."""
    request = parse_find(ident(level="SERIES", StudyInstanceUID="1.2", StudyDate=""), SR)
    assert [r.tag for r in request.requested] == ["00080020", "0020000D"]
    assert refused(ident(level="SERIES", StudyInstanceUID="1.2", StudyDate="2024")).offending


def test_relational_search_allows_keys_above_the_level() -> None:
    request = parse_find(ident(level="SERIES", StudyDate="20240101"), SR, relational=True)
    assert matcher_of(request, "00080020") == SingleValue("20240101")


def test_key_below_the_level_may_be_returned_but_not_matched() -> None:
    assert parse_find(ident(level="STUDY", Modality=""), SR).requested[0].tag == "00080060"
    assert refused(ident(level="STUDY", Modality="CT")).offending == ("00080060",)


def test_unique_key_at_the_level_takes_uid_lists_not_wildcards() -> None:
    request = parse_find(ident(level="STUDY", StudyInstanceUID=["1.2", "1.3"]), SR)
    assert matcher_of(request, "0020000D") == UidList(("1.2", "1.3"))
    assert refused(ident(level="PATIENT", PatientID="P*"), PR).offending == ("00100020",)
    # In the Study Root model Patient ID is an ordinary study key: wild cards are fine.
    assert matcher_of(parse_find(ident(PatientID="P*"), SR), "00100020") == Wildcard("P*")


# --- every matching rule through an identifier ---------------------------------------------


@pytest.mark.parametrize(
    ("keys", "tag", "expected"),
    [
        ({"PatientName": ""}, "00100010", Universal()),
        ({"PatientName": "*"}, "00100010", Universal()),
        ({"PatientName": "Doe^Jane"}, "00100010", SingleValue("Doe^Jane")),
        ({"PatientName": "Do?^*"}, "00100010", Wildcard("Do?^*")),
        ({"StudyDate": "20240101-20240131"}, "00080020", Range("20240101", "20240131")),
        ({"StudyDate": "-20240131"}, "00080020", Range(None, "20240131")),
        ({"StudyTime": "1000-"}, "00080030", Range("1000", None)),
        ({"StudyInstanceUID": ["1.2", "1.3"]}, "0020000D", UidList(("1.2", "1.3"))),
        ({"AccessionNumber": "A?C*"}, "00080050", Wildcard("A?C*")),
        ({"ModalitiesInStudy": "CT"}, "00080061", SingleValue("CT")),
    ],
)
def test_matching_rules(keys: dict[str, Any], tag: str, expected: object) -> None:
    assert matcher_of(parse_find(ident(**keys), SR), tag) == expected


def test_sequence_matching_uses_the_item_keys() -> None:
    item = Dataset()
    item.ScheduledProcedureStepID = "SPS1"
    item.RequestedProcedureID = ""
    request = parse_find(
        ident(level="SERIES", StudyInstanceUID="1.2", RequestAttributesSequence=[item]), SR
    )
    matcher = matcher_of(request, "00400275")
    assert isinstance(matcher, SequenceMatch)
    assert [k.tag for k in matcher.keys] == ["00400009"]
    wanted = next(r for r in request.requested if r.tag == "00400275")
    assert wanted.items is not None
    assert [i.tag for i in wanted.items] == ["00400009", "00401001"]


@pytest.mark.parametrize("items", [[], [Dataset()]])
def test_empty_sequence_or_empty_item_is_a_return_key(items: list[Dataset]) -> None:
    request = parse_find(
        ident(level="SERIES", StudyInstanceUID="1.2", RequestAttributesSequence=items), SR
    )
    assert matcher_of(request, "00400275") == Universal()
    assert [r.tag for r in request.requested] == ["0020000D", "00400275"]


def test_sequence_key_with_two_items_is_a900() -> None:
    items = [Dataset(), Dataset()]
    items[0].ScheduledProcedureStepID = "A"
    items[1].ScheduledProcedureStepID = "B"
    error = refused(ident(level="SERIES", StudyInstanceUID="1.2", RequestAttributesSequence=items))
    assert error.offending == ("00400275",)


@pytest.mark.parametrize(
    "keys",
    [
        {"StudyDate": "2024-13"},
        {"StudyDate": "20240101*"},
        {"PatientName": "A\\B"},
        {"StudyInstanceUID": "1.2.abc"},
    ],
)
def test_invalid_values_are_a900(keys: dict[str, str]) -> None:
    error = refused(ident(**keys))
    assert error.status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert len(error.comment) <= 64


# --- against the index, and the response identifiers ---------------------------------------


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    store = SqliteIndex(tmp_path / "index.db", durable=False)
    store.migrate()
    study_a, study_b = "1.2.826.0.1.3680043.10.1234.7.1", "1.2.826.0.1.3680043.10.1234.7.2"
    instances = [
        make_new_instance(study_uid=study_a, patient_id="P1", patient_name="Doe^Jane"),
        make_new_instance(study_uid=study_a, patient_id="P1", patient_name="Doe^Jane"),
        make_new_instance(
            study_uid=study_b,
            patient_id="P2",
            patient_name="Müller^Jürgen",
            study_date="20230510",
            modality="MR",
            StudyDescription=None,
        ),
    ]
    store.begin(instances)
    store.commit(instances, [Event("test", "default", {})])
    try:
        yield store
    finally:
        store.close()


def run(index: SqliteIndex, identifier: DicomJson, model: Model = SR) -> list[DicomJson]:
    request = parse_find(identifier, model)
    rows = index.query(request.query).rows
    return [response_identifier(row, request, retrieve_ae="HOUNSFIELD") for row in rows]


def test_responses_hold_exactly_the_requested_keys(index: SqliteIndex) -> None:
    found = run(index, ident(PatientName="doe*", StudyInstanceUID="", StudyDescription=""))
    assert len(found) == 1
    response = found[0]
    assert set(response) == {"00080052", "00080054", "00081030", "00100010", "0020000D"}
    assert response["00080052"]["Value"] == ["STUDY"]
    assert response["00080054"]["Value"] == ["HOUNSFIELD"]
    assert response["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]


def test_requested_keys_the_entity_lacks_come_back_empty(index: SqliteIndex) -> None:
    found = run(index, ident(PatientID="P2", StudyDescription="", IssuerOfPatientID=""))
    assert found[0]["00081030"] == {"vr": "LO"}
    assert found[0]["00100021"] == {"vr": "LO"}


def test_computed_attributes_are_returned(index: SqliteIndex) -> None:
    found = run(
        index,
        ident(
            PatientID="P1",
            NumberOfStudyRelatedInstances="",
            ModalitiesInStudy="",
            InstanceAvailability="",
        ),
    )
    assert found[0]["00201208"]["Value"] == [2]
    assert found[0]["00080061"]["Value"] == ["CT"]
    assert found[0]["00080056"]["Value"] == ["ONLINE"]


def test_non_ascii_values_switch_to_utf8_unless_the_request_charset_fits(
    index: SqliteIndex,
) -> None:
    plain = run(index, ident(PatientID="P2", PatientName=""))[0]
    assert plain["00080005"]["Value"] == ["ISO_IR 192"]
    latin = run(index, ident(charset="ISO_IR 100", PatientID="P2", PatientName=""))[0]
    assert latin["00080005"]["Value"] == ["ISO_IR 100"]
    ascii_only = run(index, ident(PatientID="P1", PatientName=""))[0]
    assert "00080005" not in ascii_only


def test_patient_root_levels_walk_down_the_hierarchy(index: SqliteIndex) -> None:
    patients = run(index, ident(level="PATIENT", PatientID="", PatientName="M*"), PR)
    assert [p["00100020"]["Value"] for p in patients] == [["P2"]]
    studies = run(index, ident(level="STUDY", PatientID="P1", StudyInstanceUID=""), PR)
    assert len(studies) == 1
    study = studies[0]["0020000D"]["Value"][0]
    series = run(
        index,
        ident(level="SERIES", PatientID="P1", StudyInstanceUID=study, SeriesInstanceUID=""),
        PR,
    )
    assert len(series) == 2
    images = run(
        index,
        ident(
            level="IMAGE",
            PatientID="P1",
            StudyInstanceUID=study,
            SeriesInstanceUID=series[0]["0020000E"]["Value"][0],
            SOPInstanceUID="",
            InstanceNumber="",
        ),
        PR,
    )
    assert len(images) == 1
    assert images[0]["00200013"]["Value"] == [1]


def test_date_range_and_uid_list_against_the_index(index: SqliteIndex) -> None:
    assert len(run(index, ident(StudyDate="20240101-"))) == 1
    assert len(run(index, ident(StudyDate="-20231231"))) == 1
    both = ["1.2.826.0.1.3680043.10.1234.7.1", "1.2.826.0.1.3680043.10.1234.7.2", new_uid()]
    assert len(run(index, ident(StudyInstanceUID=both))) == 2


def test_ds_values_are_returned_within_sixteen_characters() -> None:
    request = parse_find(
        ident(level="IMAGE", StudyInstanceUID="1.2", SeriesInstanceUID="1.3", SliceThickness=""), SR
    )
    row = {"00180050": {"vr": "DS", "Value": [0.123456789012345678]}}
    out = response_identifier(row, request, retrieve_ae="AE")
    assert len(out["00180050"]["Value"][0]) <= 16


def test_identifier_starting_above_group_0008_or_empty_decodes() -> None:
    ds = Dataset()
    ds.PatientName = "X"
    assert key_text(decode_identifier(encode(ds), IMPLICIT)["00100010"]) == "X"
    assert decode_identifier(b"", EXPLICIT) == {}


def test_deflated_and_big_endian_identifiers_decode() -> None:
    import zlib

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = "P9"
    raw = encode(ds, implicit=False)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(raw) + compressor.flush()
    data = decode_identifier(deflated, "1.2.840.10008.1.2.1.99")
    assert key_text(data["00100020"]) == "P9"
    fp = DicomBytesIO()
    fp.is_little_endian = False
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    assert key_text(decode_identifier(fp.getvalue(), "1.2.840.10008.1.2.2")["00100020"]) == "P9"
