"""C-CANCEL on the wire (PS3.7 9.3.2.3): pynetdicom cancels a C-FIND and a C-GET after the
first pending response; the server stops and answers Cancel (FE00)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from tests.builders import make_instance, multipart, uid
from tests.conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.services
COUNT = 1500


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, str]]:
    server = start_server(tmp_path_factory.mktemp("cancel") / "data")
    try:
        study, series = uid(), uid()
        for start in range(0, COUNT, 250):
            parts = [
                make_instance(
                    study_uid=study, series_uid=series, instance_number=n, rows=2, columns=2
                )
                for n in range(start, start + 250)
            ]
            body, content_type = multipart(parts)
            response = httpx.post(
                f"{server.dicomweb}/studies",
                content=body,
                headers={"Content-Type": content_type},
                timeout=60,
            )
            assert response.status_code == 200
        yield server, study, series
    finally:
        stop_server(server)


def context_id(assoc: Any, abstract_syntax: str) -> int:
    return next(
        int(cx.context_id)
        for cx in assoc.accepted_contexts
        if cx.abstract_syntax == abstract_syntax
    )


def test_find_cancelled_after_the_first_match(archive: tuple[RunningServer, str, str]) -> None:
    server, study, series = archive
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study
    query.SeriesInstanceUID = series
    query.SOPInstanceUID = ""
    statuses: list[int] = []
    try:
        # Cancel once the first match arrived. (A C-CANCEL-RQ sent right behind the request
        # can reach the server before it starts processing the request, and the server core
        # then forgets it: it clears the flag when processing starts.)
        for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            statuses.append(int(status.Status))
            if len(statuses) == 1:
                assoc.send_c_cancel(
                    1, context_id(assoc, StudyRootQueryRetrieveInformationModelFind)
                )
    finally:
        assoc.release()
    assert statuses[-1] == 0xFE00
    assert statuses.count(0xFF00) < COUNT


def test_get_cancelled_after_the_first_sub_operation(
    archive: tuple[RunningServer, str, str],
) -> None:
    server, study, _ = archive
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(event.request.AffectedSOPInstanceUID)
        return 0

    ae = AE(ae_title="GETSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2.1"])
    assoc = ae.associate(
        "127.0.0.1",
        server.dimse_port,
        ae_title=server.ae_title,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    responses = []
    try:
        for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
            responses.append(status)
            if len(responses) == 1:
                assoc.send_c_cancel(1, context_id(assoc, StudyRootQueryRetrieveInformationModelGet))
    finally:
        assoc.release()
    final = responses[-1]
    assert int(final.Status) == 0xFE00
    assert final.NumberOfRemainingSuboperations > 0
    assert final.NumberOfCompletedSuboperations == len(received) < COUNT
    assert final.NumberOfRemainingSuboperations + len(received) == COUNT
