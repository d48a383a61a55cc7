"""SOP Class Extended Negotiation with pynetdicom as the requestor (PS3.7 D.3.3.5, PS3.4 B.3.1,
C.5): what the archive answers in the A-ASSOCIATE-AC, and that C-FIND then behaves as answered
(relational queries, combined date-time matching, fuzzy person names), and not otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
from pynetdicom.sop_class import (
    CTImageStorage,
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from tests.builders import make_dataset, multipart, to_bytes, uid
from tests.conftest import RunningServer, start_server, stop_server

FIND = StudyRootQueryRetrieveInformationModelFind
PATIENT_FIND = PatientRootQueryRetrieveInformationModelFind


def item(sop_class: str, information: bytes) -> SOPClassExtendedNegotiation:
    sub = SOPClassExtendedNegotiation()
    sub.sop_class_uid = sop_class
    sub.service_class_application_information = information
    return sub


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict]]:
    """Three studies of one patient whose dates and times tell the two date-time semantics
    apart, and one study of another patient with an accented name."""
    server = start_server(
        tmp_path_factory.mktemp("extneg") / "data", {"HOUNSFIELD_DURABLE": "false"}
    )
    patient = f"EXTNEG-{uid()[-6:]}"
    studies = {
        "early": ("20060705", "090000"),  # before 10:00 on the first day: never
        "night": ("20060706", "010000"),  # inside the combined range only
        "noon": ("20060706", "120000"),  # inside both readings
    }
    datasets = {}
    for name, (date, time) in studies.items():
        datasets[name] = make_dataset(
            patient_id=patient, patient_name="Moreau^Zoë", study_date=date, StudyTime=time
        )
    datasets["other"] = make_dataset(patient_id=patient + "-2", patient_name="Dupont^Jean")
    body, content_type = multipart([to_bytes(ds) for ds in datasets.values()])
    try:
        response = httpx.post(
            f"{server.dicomweb}/studies", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
        yield server, {"patient": patient, **datasets}
    finally:
        stop_server(server)


def associate(server: RunningServer, *extended: SOPClassExtendedNegotiation) -> Any:
    ae = AE(ae_title="EXTNEG")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for context in (FIND, PATIENT_FIND, StudyRootQueryRetrieveInformationModelMove):
        ae.add_requested_context(context)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate(
        "127.0.0.1", server.dimse_port, ae_title=server.ae_title, ext_neg=list(extended)
    )
    assert assoc.is_established
    return assoc


def find(assoc: Any, query: Dataset, model: str = FIND) -> tuple[int, list[Dataset]]:
    found = []
    status = -1
    for response, identifier in assoc.send_c_find(query, model):
        status = int(response.Status)
        if status in (0xFF00, 0xFF01):
            found.append(identifier)
    return status, found


def test_the_answer_grants_only_what_was_asked_and_is_implemented(
    archive: tuple[RunningServer, dict],
) -> None:
    server, _ = archive
    assoc = associate(
        server,
        item(FIND, bytes((1, 1, 1, 1, 1, 1, 1))),
        item(PATIENT_FIND, bytes((0, 1))),
        item(StudyRootQueryRetrieveInformationModelMove, bytes((1, 1))),
        item(CTImageStorage, bytes((3, 0, 0, 0, 2, 0))),
        item(ModalityWorklistInformationFind, bytes((0, 1, 1, 1))),
        item("1.2.840.10008.5.1.4.1.1.4", bytes((3,))),  # MR: no presentation context
    )
    try:
        answered = dict(assoc.acceptor.sop_class_extended)
    finally:
        assoc.release()
    assert answered == {
        FIND: bytes((1, 1, 1, 0, 0, 0, 0)),  # no timezone adjustment, conversion, EVM, MVM
        PATIENT_FIND: bytes((0, 1)),
        StudyRootQueryRetrieveInformationModelMove: bytes((1, 0)),
        CTImageStorage: bytes((2, 0, 2, 0, 0, 0)),  # Level 2, signatures kept, no coercion
    }


def test_no_sub_item_is_answered_when_none_was_proposed(
    archive: tuple[RunningServer, dict],
) -> None:
    assoc = associate(archive[0])
    try:
        assert dict(assoc.acceptor.sop_class_extended) == {}
    finally:
        assoc.release()


def date_time_query(patient: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient
    query.StudyDate = "20060705-20060707"
    query.StudyTime = "1000-1800"
    query.StudyInstanceUID = ""
    return query


def test_combined_date_time_matching_only_when_granted(
    archive: tuple[RunningServer, dict],
) -> None:
    server, data = archive
    names = {str(data[n].StudyInstanceUID): n for n in ("early", "night", "noon")}
    separate = associate(server)
    try:
        status, found = find(separate, date_time_query(data["patient"]))
    finally:
        separate.release()
    assert status == 0
    assert sorted(names[str(ds.StudyInstanceUID)] for ds in found) == ["noon"]
    combined = associate(server, item(FIND, bytes((0, 1))))
    try:
        status, found = find(combined, date_time_query(data["patient"]))
    finally:
        combined.release()
    assert status == 0
    assert sorted(names[str(ds.StudyInstanceUID)] for ds in found) == ["night", "noon"]
    assert {str(ds.StudyTime) for ds in found} == {"010000", "120000"}  # still returned


def name_query(name: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = name
    query.PatientID = ""
    return query


def test_fuzzy_person_names_only_when_granted(archive: tuple[RunningServer, dict]) -> None:
    server, data = archive
    plain = associate(server)
    try:
        assert find(plain, name_query("moreau zoe")) == (0, [])
    finally:
        plain.release()
    fuzzy = associate(server, item(FIND, bytes((0, 0, 1))))
    try:
        status, found = find(fuzzy, name_query("moreau zoe"))
    finally:
        fuzzy.release()
    assert status == 0
    assert {str(ds.PatientID) for ds in found} == {data["patient"]}
    assert len(found) == 3


def image_query(patient: str) -> Dataset:
    """A relational query (C.4.1.2.2.1): IMAGE level, no Study or Series Instance UID,
    matching on a patient and a study attribute."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.PatientID = patient
    query.StudyDate = "20060706"
    query.SOPInstanceUID = ""
    query.StudyInstanceUID = ""
    return query


@pytest.mark.parametrize("model", [FIND, PATIENT_FIND])
def test_relational_queries_only_when_granted(
    archive: tuple[RunningServer, dict], model: str
) -> None:
    server, data = archive
    hierarchical = associate(server)
    try:
        status, found = find(hierarchical, image_query(data["patient"]), model)
    finally:
        hierarchical.release()
    assert status == 0xA900 and not found
    relational = associate(server, item(model, bytes((1,))))
    try:
        status, found = find(relational, image_query(data["patient"]), model)
    finally:
        relational.release()
    assert status == 0
    expected = {
        str(data[n].SOPInstanceUID): str(data[n].StudyInstanceUID) for n in ("night", "noon")
    }
    assert {str(ds.SOPInstanceUID): str(ds.StudyInstanceUID) for ds in found} == expected
