"""De-identification through the real server and CLI: `POST /api/deidentify` copies a
multi-series study de-identified into another partition, where QIDO-RS finds it without the
patient's name; `hounsfield export --deidentify` writes a folder; both are audited (Export)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread

from tests.builders import make_instance, multipart, uid
from tests.conftest import RunningServer, hounsfield_cli, start_server, stop_server


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("deid") / "data"
    running = start_server(data_dir, {"HOUNSFIELD_DEIDENTIFY_SALT": "test-salt"})
    try:
        yield running
    finally:
        stop_server(running)


def store_study(server: RunningServer, *, burned_in: bool = False) -> str:
    study = uid()
    parts = []
    for series in range(2):
        series_uid = uid()
        for number in range(2):
            extra = {"BurnedInAnnotation": "YES"} if burned_in and series == 1 else {}
            parts.append(
                make_instance(
                    study_uid=study,
                    series_uid=series_uid,
                    patient_id="MRN-777",
                    patient_name="Sensitive^Person",
                    instance_number=number + 1,
                    InstitutionName="Sensitive Clinic",
                    **extra,
                )
            )
    body, content_type = multipart(parts)
    response = httpx.post(
        server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
    return study


def wait_job(server: RunningServer, job_id: int) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "dead"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_api_job_copies_a_study_deidentified_into_another_partition(
    archive: RunningServer,
) -> None:
    study = store_study(archive)
    response = httpx.post(
        archive.url + "/api/deidentify",
        json={"study": study, "targetPartition": "research", "options": ["retain-full-dates"]},
    )
    assert response.status_code == 202, response.text
    job = wait_job(archive, response.json()["job"])
    assert job["state"] == "succeeded", job
    assert job["kind"] == "deidentify"

    research = archive.dicomweb + "/partitions/research"
    studies = httpx.get(research + "/studies", params={"includefield": "all"}).json()
    assert len(studies) == 1
    copy = studies[0]
    new_uid = copy["0020000D"]["Value"][0]
    assert new_uid != study and new_uid.startswith("2.25.")
    assert copy["00080020"]["Value"] == ["20240115"]  # Retain Full Dates honoured
    assert "Sensitive" not in str(copy)
    series = httpx.get(f"{research}/studies/{new_uid}/series").json()
    assert len(series) == 2
    metadata = httpx.get(f"{research}/studies/{new_uid}/metadata").json()
    assert len(metadata) == 4
    for instance in metadata:
        assert instance["00120062"]["Value"] == ["YES"]  # Patient Identity Removed
        assert "Sensitive" not in str(instance) and "MRN-777" not in str(instance)
    assert httpx.get(research + "/studies", params={"PatientName": "Sensitive*"}).status_code == 204
    # The original is untouched and still in its partition.
    original = httpx.get(archive.dicomweb + "/studies", params={"StudyInstanceUID": study}).json()
    assert original[0]["00100010"]["Value"][0]["Alphabetic"] == "Sensitive^Person"

    exports = httpx.get(archive.url + "/api/audit", params={"type": "export", "study": study})
    assert exports.status_code == 200 and exports.json()
    assert "partition:research" in exports.json()[0]["xml"]


def test_api_refuses_bad_requests(archive: RunningServer) -> None:
    study = store_study(archive)
    url = archive.url + "/api/deidentify"
    assert httpx.post(url, json={"study": study}).status_code == 400
    bad = {"study": study, "targetPartition": "research", "options": ["retain-everything"]}
    assert httpx.post(url, json=bad).status_code == 400
    same = {"study": study, "targetPartition": "default"}
    assert httpx.post(url, json=same).status_code == 400
    missing = {"study": uid(), "targetPartition": "research"}
    assert httpx.post(url, json=missing).status_code == 404


def test_cli_export_writes_a_deidentified_folder(archive: RunningServer, tmp_path: Path) -> None:
    study = store_study(archive, burned_in=True)
    target = tmp_path / "out"
    command = ["export", "--deidentify", study, "--quiet"]
    done = hounsfield_cli(
        archive.data_dir, *command, "--to", str(target), "--option", "retain-uids"
    )
    # Two objects have Burned In Annotation YES: refused, and the exit status says so.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused 2" in done.stdout
    files = sorted(target.rglob("*.dcm"))
    assert len(files) == 2
    for path in files:
        ds = dcmread(path)
        assert ds.StudyInstanceUID == study  # Retain UIDs honoured
        assert ds.PatientIdentityRemoved == "YES"
        assert "Sensitive" not in str(ds) and "MRN-777" not in str(ds)
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113110"]
    allowed = hounsfield_cli(
        archive.data_dir, *command, "--to", str(tmp_path / "all"), "--allow-burned-in"
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert len(list((tmp_path / "all").rglob("*.dcm"))) == 4
