"""Modality Worklist C-FIND (PS3.4 Annex K) with DCMTK findscu -W against the real server;
items are written through the admin API."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.conftest import RunningServer, require_tool, start_server, stop_server

pytestmark = pytest.mark.services


def item(patient: str, modality: str, date: str) -> dict[str, object]:
    ds = Dataset()
    ds.PatientName = patient
    ds.PatientID = patient[:3]
    ds.AccessionNumber = "A" + date
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = "MOD1"
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepID = "S" + date
    ds.ScheduledProcedureStepSequence = [step]
    json: dict[str, object] = ds.to_json_dict()
    return json


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("mwl") / "data")
    try:
        for n, (patient, modality, date) in enumerate(
            [("Doe^Jane", "CT", "20241001"), ("Roe^Rick", "MR", "20241002")]
        ):
            put = httpx.put(
                f"{running.url}/api/worklist/item-{n}", json=item(patient, modality, date)
            )
            assert put.status_code == 201, put.text
        yield running
    finally:
        stop_server(running)


def findscu(server: RunningServer, out: Path, *keys: str) -> list[Dataset]:
    out.mkdir()
    args = [require_tool("findscu"), "-W", "-aec", server.ae_title, "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    done = subprocess.run(
        [*args, "127.0.0.1", str(server.dimse_port)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def test_worklist_query_by_modality(server: RunningServer, tmp_path: Path) -> None:
    found = findscu(
        server,
        tmp_path / "ct",
        "PatientName",
        "ScheduledProcedureStepSequence[0].Modality=CT",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
    )
    assert [str(f.PatientName) for f in found] == ["Doe^Jane"]
    assert found[0].ScheduledProcedureStepSequence[0].ScheduledProcedureStepID == "S20241001"


def test_worklist_query_by_date_range(server: RunningServer, tmp_path: Path) -> None:
    found = findscu(
        server,
        tmp_path / "range",
        "PatientName",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20241001-20241031",
    )
    assert sorted(str(f.PatientName) for f in found) == ["Doe^Jane", "Roe^Rick"]


def test_admin_api_round_trip(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/api/worklist/item-0").status_code == 200
    assert len(httpx.get(f"{server.url}/api/worklist").json()) == 2
    assert httpx.put(f"{server.url}/api/worklist/bad", json={"x": 1}).status_code == 400
    assert httpx.get(f"{server.url}/api/worklist", params={"partition": "other"}).json() == []
    assert httpx.delete(f"{server.url}/api/worklist/nope").status_code == 404
