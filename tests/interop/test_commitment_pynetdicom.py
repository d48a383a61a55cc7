"""Storage Commitment Push Model (PS3.4 Annex J) with pynetdicom as the SCU: the report comes
on the requesting association, or on a new one when the SCU released it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel

from tests.builders import make_instance, multipart, uid
from tests.conftest import RunningServer, free_port, start_server, stop_server

pytestmark = pytest.mark.services
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
INSTANCE = "1.2.840.10008.1.20.1.1"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, list[str]]]:
    server = start_server(tmp_path_factory.mktemp("commitment") / "data")
    try:
        parts = [make_instance() for _ in range(2)]
        body, content_type = multipart(parts)
        response = httpx.post(
            f"{server.dicomweb}/studies", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200
        yield server, [str(dcmread(BytesIO(p)).SOPInstanceUID) for p in parts]
    finally:
        stop_server(server)


def action(transaction: str, refs: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction
    items = []
    for sop_class, sop in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


def test_report_on_the_same_association(archive: tuple[RunningServer, list[str]]) -> None:
    server, stored = archive
    reports: list[tuple[int, Dataset]] = []
    arrived = threading.Event()

    def on_report(event: Any) -> int:
        reports.append((int(event.request.EventTypeID), event.event_information))
        arrived.set()
        return 0x0000

    ae = AE(ae_title="CMTSCU")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate(
        "127.0.0.1",
        server.dimse_port,
        ae_title=server.ae_title,
        evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
    )
    assert assoc.is_established
    transaction, missing = uid(), uid()
    refs = [(CT, stored[0]), (CT, stored[1]), (CT, missing), (MR, stored[0])]
    try:
        status, _ = assoc.send_n_action(
            action(transaction, refs), 1, StorageCommitmentPushModel, INSTANCE
        )
        assert int(status.Status) == 0
        assert arrived.wait(10)
        # The handler has run; let pynetdicom send its N-EVENT-REPORT-RSP before releasing.
        time.sleep(0.5)
    finally:
        assoc.release()
    event_type, info = reports[0]
    assert event_type == 2
    assert info.TransactionUID == transaction
    assert [i.ReferencedSOPInstanceUID for i in info.ReferencedSOPSequence] == stored
    failed = {
        (i.ReferencedSOPInstanceUID, i.ReferencedSOPClassUID): i.FailureReason
        for i in info.FailedSOPSequence
    }
    assert failed == {(missing, CT): 0x0112, (stored[0], MR): 0x0119}


def test_invalid_requests_are_refused(archive: tuple[RunningServer, list[str]]) -> None:
    server, _ = archive
    ae = AE(ae_title="CMTSCU")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    try:
        status, _ = assoc.send_n_action(action(uid(), []), 1, StorageCommitmentPushModel, INSTANCE)
        assert int(status.Status) == 0x0115
        status, _ = assoc.send_n_action(
            action(uid(), [(CT, uid())]), 2, StorageCommitmentPushModel, INSTANCE
        )
        assert int(status.Status) == 0x0123
    finally:
        assoc.release()


def test_report_on_a_new_association_after_release(
    archive: tuple[RunningServer, list[str]],
) -> None:
    server, stored = archive
    reports: list[tuple[int, Dataset]] = []
    arrived = threading.Event()

    def on_report(event: Any) -> tuple[int, None]:
        # As the acceptor of this association pynetdicom serves N-EVENT-REPORT as an SCP and
        # wants (status, event reply).
        reports.append((int(event.request.EventTypeID), event.event_information))
        arrived.set()
        return 0x0000, None

    port = free_port()
    listener = AE(ae_title="CMTSCU2")
    listener.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    scp = listener.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
    )
    try:
        registered = httpx.put(
            f"{server.url}/api/remote-aes/CMTSCU2", json={"host": "127.0.0.1", "port": port}
        )
        assert registered.status_code in (200, 201)
        ae = AE(ae_title="CMTSCU2")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
        transaction = uid()
        status, _ = assoc.send_n_action(
            action(transaction, [(CT, stored[0])]), 1, StorageCommitmentPushModel, INSTANCE
        )
        assoc.release()  # before the report: it must come on a new association
        assert int(status.Status) == 0
        assert arrived.wait(15)
    finally:
        scp.shutdown()
    event_type, info = reports[0]
    assert event_type == 1
    assert info.TransactionUID == transaction
    assert "FailedSOPSequence" not in info
