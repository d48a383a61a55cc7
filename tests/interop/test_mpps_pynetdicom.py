"""Modality Performed Procedure Step (PS3.4 Annex F) with pynetdicom: N-CREATE, N-SET until
COMPLETED, the refusals, and the record in the admin API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from tests.builders import uid
from tests.conftest import RunningServer, start_server, stop_server

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("mpps") / "data")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def assoc(server: RunningServer) -> Iterator[Association]:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    association = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    assert association.is_established
    try:
        yield association
    finally:
        association.release()


def step(status: str = "IN PROGRESS") -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P1"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedProcedureStepStatus = status
    ds.PerformedStationAETitle = "MODALITY"
    ds.Modality = "CT"
    return ds


def test_create_update_complete(server: RunningServer, assoc: Association) -> None:
    sop = uid()
    status, _ = assoc.send_n_create(step(), ModalityPerformedProcedureStep, sop)
    assert int(status.Status) == 0
    again, _ = assoc.send_n_create(step(), ModalityPerformedProcedureStep, sop)
    assert int(again.Status) == 0x0111

    change = Dataset()
    change.PerformedProcedureStepDescription = "CT chest"
    status, _ = assoc.send_n_set(change, ModalityPerformedProcedureStep, sop)
    assert int(status.Status) == 0
    done = Dataset()
    done.PerformedProcedureStepStatus = "COMPLETED"
    status, _ = assoc.send_n_set(done, ModalityPerformedProcedureStep, sop)
    assert int(status.Status) == 0
    late, _ = assoc.send_n_set(change, ModalityPerformedProcedureStep, sop)
    assert int(late.Status) == 0x0110
    assert int(late.ErrorID) == 0xA710

    record = httpx.get(f"{server.url}/api/mpps/{sop}").json()
    assert record["00400252"]["Value"] == ["COMPLETED"]
    assert record["00400254"]["Value"] == ["CT chest"]
    assert any(item["id"] == sop for item in httpx.get(f"{server.url}/api/mpps").json())


def test_refusals(assoc: Association) -> None:
    status, _ = assoc.send_n_create(step("COMPLETED"), ModalityPerformedProcedureStep, uid())
    assert int(status.Status) == 0x0106
    status, _ = assoc.send_n_set(step(), ModalityPerformedProcedureStep, uid())
    assert int(status.Status) == 0x0112


def test_the_scp_assigns_a_uid_when_the_scu_gives_none(
    server: RunningServer, assoc: Association
) -> None:
    before = len(httpx.get(f"{server.url}/api/mpps").json())
    status, _ = assoc.send_n_create(step(), ModalityPerformedProcedureStep, None)
    assert int(status.Status) == 0
    assert len(httpx.get(f"{server.url}/api/mpps").json()) == before + 1
