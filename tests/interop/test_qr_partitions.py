"""Partitions over DIMSE (DESIGN.md key idea 6): an association sees the partition of its
calling AE, for C-FIND, C-GET and C-MOVE destinations alike."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from tests.builders import make_instance, multipart
from tests.conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict]]:
    server = start_server(tmp_path_factory.mktemp("partitions") / "data")
    try:
        studies = {}
        for partition, root in (("default", server.dicomweb), ("tenant-b", None)):
            url = root or f"{server.dicomweb}/partitions/{partition}"
            data = make_instance(patient_id="SHARED-ID")
            body, content_type = multipart([data])
            stored = httpx.post(
                f"{url}/studies", content=body, headers={"Content-Type": content_type}
            )
            assert stored.status_code == 200, stored.text
            studies[partition] = str(dcmread(BytesIO(data)).StudyInstanceUID)
        for aet, partition in (("TENANTB", "tenant-b"), ("DESTB", "tenant-b")):
            put = httpx.put(
                f"{server.url}/api/remote-aes/{aet}",
                json={"host": "127.0.0.1", "port": 1, "partition": partition},
            )
            assert put.status_code in (200, 201)
        yield server, studies
    finally:
        stop_server(server)


def studies_seen_by(server: RunningServer, calling_ae: str) -> set[str]:
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "SHARED-ID"
    query.StudyInstanceUID = ""
    try:
        return {
            str(found.StudyInstanceUID)
            for status, found in assoc.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind
            )
            if found is not None and int(status.Status) == 0xFF00
        }
    finally:
        assoc.release()


def test_find_sees_only_the_calling_ae_partition(archive: tuple[RunningServer, dict]) -> None:
    server, studies = archive
    assert studies_seen_by(server, "ANYONE") == {studies["default"]}
    assert studies_seen_by(server, "TENANTB") == {studies["tenant-b"]}


def test_move_destination_of_another_partition_is_unknown(
    archive: tuple[RunningServer, dict],
) -> None:
    server, studies = archive
    ae = AE(ae_title="ANYONE")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = studies["default"]
    try:
        statuses = [
            int(status.Status)
            for status, _ in assoc.send_c_move(
                query, "DESTB", StudyRootQueryRetrieveInformationModelMove
            )
        ]
    finally:
        assoc.release()
    assert statuses == [0xA801]
