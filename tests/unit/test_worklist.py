"""Modality Worklist: identifiers, matching on scheduled procedure steps, responses, and the
item checks of the worklist service (PS3.4 Annex K)."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from hounsfield.adapters.worklist.sqlite import SqliteWorklistStore
from hounsfield.domain.cfind import decode_identifier
from hounsfield.domain.model import DicomJson
from hounsfield.domain.mwl import parse_worklist
from hounsfield.domain.qrmodel import QueryRetrieveError
from hounsfield.services.worklist import InvalidWorklistItemError, WorklistService


def item(patient: str, modality: str, date: str, station: str = "CT01", **extra: Any) -> DicomJson:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = patient
    ds.PatientID = f"ID-{patient[:3]}"
    ds.AccessionNumber = "ACC-" + date
    ds.RequestedProcedureID = "RP1"
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = "0900"
    step.ScheduledProcedureStepID = "SPS-" + date
    ds.ScheduledProcedureStepSequence = [step]
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    json: DicomJson = ds.to_json_dict()
    return json


def identifier(step: dict[str, Any] | None = None, **keys: Any) -> DicomJson:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    if step is not None:
        sps = Dataset()
        for keyword, value in step.items():
            setattr(sps, keyword, value)
        ds.ScheduledProcedureStepSequence = [sps]
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return decode_identifier(fp.getvalue(), "1.2.840.10008.1.2")


@pytest.fixture
def worklist() -> WorklistService:
    service = WorklistService(SqliteWorklistStore(":memory:"))
    service.put("default", "a", item("Doe^Jane", "CT", "20241001"))
    service.put("default", "b", item("Roe^Rick", "MR", "20241002", station="MR01"))
    service.put("default", "c", item("Müller^Jürgen", "CT", "20241003"))
    service.put("other", "d", item("Doe^Other", "CT", "20241001"))
    return service


def find(worklist: WorklistService, ident: DicomJson) -> list[DicomJson]:
    return list(worklist.find(parse_worklist(ident), "default"))


@pytest.mark.parametrize(
    ("step", "keys", "count"),
    [
        ({"Modality": "CT"}, {}, 2),
        ({"ScheduledStationAETitle": "MR01"}, {}, 1),
        ({"ScheduledProcedureStepStartDate": "20241001-20241002"}, {}, 2),
        ({"ScheduledProcedureStepStartDate": "20241003"}, {}, 1),
        ({"Modality": "CT", "ScheduledProcedureStepStartDate": "-20241001"}, {}, 1),
        (None, {"PatientName": "doe*"}, 1),
        (None, {"PatientName": ""}, 3),
        ({"Modality": ""}, {"AccessionNumber": "ACC-2024100?"}, 3),
    ],
)
def test_matching(
    worklist: WorklistService, step: dict[str, Any] | None, keys: dict[str, Any], count: int
) -> None:
    assert len(find(worklist, identifier(step, **keys))) == count


def test_partitions_do_not_mix(worklist: WorklistService) -> None:
    request = parse_worklist(identifier(PatientName="Doe*"))
    assert len(list(worklist.find(request, "other"))) == 1


def test_response_holds_the_requested_keys_and_sequence_items(worklist: WorklistService) -> None:
    [found] = find(
        worklist,
        identifier(
            {
                "Modality": "MR",
                "ScheduledProcedureStepID": "",
                "ScheduledPerformingPhysicianName": "",
            },
            PatientName="",
            StudyInstanceUID="",
        ),
    )
    assert set(found) == {"00100010", "0020000D", "00400100"}
    assert found["0020000D"] == {"vr": "UI"}
    [step] = found["00400100"]["Value"]
    assert set(step) == {"00080060", "00400009", "00400006"}
    assert step["00400009"]["Value"] == ["SPS-20241002"]
    assert step["00400006"] == {"vr": "PN"}


def test_non_ascii_values_come_back_in_utf8(worklist: WorklistService) -> None:
    [found] = find(
        worklist, identifier({"ScheduledProcedureStepStartDate": "20241003"}, PatientName="")
    )
    assert found["00080005"]["Value"] == ["ISO_IR 192"]
    assert found["00100010"]["Value"] == [{"Alphabetic": "Müller^Jürgen"}]


def test_invalid_key_value_is_a900() -> None:
    with (
        pytest.warns(UserWarning, match="Invalid value for VR DA"),
        pytest.raises(QueryRetrieveError) as caught,
    ):
        parse_worklist(identifier({"ScheduledProcedureStepStartDate": "2024-13-01"}))
    assert caught.value.status == 0xA900


@pytest.mark.parametrize(
    ("item_id", "dataset"),
    [
        ("bad id", {}),
        ("x", []),
        ("x", {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A"}]}}),
        ("x", {"00400100": {"vr": "SQ", "Value": []}}),
        ("x", {"lower": {"vr": "PN"}, "00400100": {"vr": "SQ", "Value": [{}]}}),
    ],
)
def test_invalid_items_are_refused(item_id: str, dataset: object) -> None:
    with pytest.raises(InvalidWorklistItemError):
        WorklistService(SqliteWorklistStore(":memory:")).put("default", item_id, dataset)


def test_store_put_replace_get_delete() -> None:
    store = SqliteWorklistStore(":memory:")
    service = WorklistService(store)
    assert service.put("default", "a", item("A^B", "CT", "20240101")) is True
    assert service.put("default", "a", item("A^C", "CT", "20240101")) is False
    found = service.get("default", "a")
    assert found is not None
    assert found.dataset["00100010"]["Value"] == [{"Alphabetic": "A^C"}]
    assert service.get("other", "a") is None
    assert service.delete("default", "a") is True
    assert service.delete("default", "a") is False
    store.close()
