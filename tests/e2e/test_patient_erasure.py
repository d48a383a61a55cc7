"""Erasing and exporting one patient through the real server (issue 6, GDPR/HIPAA): every
study of the patient goes from the index, the blob store and the Redis cache (rendered images
and metadata documents), its queued jobs are cancelled, other patients are untouched; the
export copies the stored bytes with a manifest."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from tests.builders import make_dataset, to_bytes
from tests.conftest import (
    RunningServer,
    free_port,
    hounsfield_cli,
    require_component,
    start_server,
    stop_server,
    stow,
)
from tests.servicesupport import REDIS_URL, drop_prefix, reachable

pytestmark = pytest.mark.services


@pytest.fixture
def prefix() -> Iterator[str]:
    require_component("Redis", reachable(REDIS_URL))
    name = f"hftest-erase-{secrets.token_hex(6)}:"
    yield name
    drop_prefix(name)


@pytest.fixture
def server(prefix: str, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path / "data",
        {
            "HOUNSFIELD_CACHE_URL": f"{REDIS_URL}?prefix={prefix}",
            "HOUNSFIELD_JOBS_RETRY_BASE_SECONDS": "3600",
        },
    )
    yield running
    stop_server(running)


def test_erase_a_patient_everywhere(server: RunningServer, prefix: str) -> None:
    erased = [make_dataset(patient_id="GDPR-1", instance_number=n) for n in (1, 2)]
    kept = make_dataset(patient_id="KEEP-1")
    stow(server.dicomweb, *(to_bytes(ds) for ds in [*erased, kept]))
    for ds in erased:
        instance = (
            f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        assert httpx.get(f"{instance}/rendered", headers={"accept": "image/png"}).status_code == 200
        assert httpx.get(f"{instance}/metadata").status_code == 200
    cache = redis.Redis.from_url(REDIS_URL)
    try:
        study_keys = [
            k
            for k in cache.scan_iter(match=f"{prefix}*")
            if erased[0].StudyInstanceUID.encode() in k
        ]
        assert study_keys  # rendered images of the patient are cached
        # A queued job for the patient's study (its destination is down: it waits an hour).
        httpx.put(
            f"{server.url}/api/remote-aes/DOWN", json={"host": "127.0.0.1", "port": free_port()}
        ).raise_for_status()
        job = httpx.post(
            f"{server.url}/api/forward",
            json={"destination": "DOWN", "study": erased[0].StudyInstanceUID},
        ).json()["job"]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # first attempt failed: queued for an hour
            queued = httpx.get(f"{server.url}/api/jobs/{job}").json()
            if queued["attempts"] >= 1 and queued["state"] == "queued":
                break
            time.sleep(0.2)

        response = httpx.post(f"{server.url}/api/patients/erase", json={"patientId": "GDPR-1"})
        assert response.status_code == 200, response.text
        report = response.json()
        assert sorted(report["studies"]) == sorted({ds.StudyInstanceUID for ds in erased})
        assert report["instances"] == 2 and report["cachedImages"] >= 2

        gone = httpx.get(f"{server.dicomweb}/studies", params={"PatientID": "GDPR-1"})
        assert gone.status_code == 204  # no match (PS3.18 8.3.4.5)
        assert (
            len(httpx.get(f"{server.dicomweb}/studies", params={"PatientID": "KEEP-1"}).json()) == 1
        )
        blobs = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
        assert all(erased[0].StudyInstanceUID not in str(p) for p in blobs)
        assert len(blobs) == 1
        leftovers = [
            k
            for k in cache.scan_iter(match=f"{prefix}*")
            if erased[0].StudyInstanceUID.encode() in k
        ]
        assert leftovers == []
        assert httpx.get(f"{server.url}/api/jobs/{job}").json()["state"] == "cancelled"
        again = httpx.post(f"{server.url}/api/patients/erase", json={"patientId": "GDPR-1"})
        assert again.status_code == 404
        refused = httpx.post(f"{server.url}/api/patients/erase", json={"patientId": "GDPR*"})
        assert refused.status_code == 400
    finally:
        cache.close()


def test_export_a_patient(server: RunningServer, tmp_path: Path) -> None:
    datasets = [make_dataset(patient_id="EXPORT-1", instance_number=n) for n in (1, 2, 3)]
    sent = {str(ds.SOPInstanceUID): to_bytes(ds) for ds in datasets}
    stow(server.dicomweb, *sent.values(), to_bytes(make_dataset(patient_id="OTHER")))
    out = tmp_path / "export"
    done = hounsfield_cli(
        server.data_dir,
        "patient",
        "export",
        "--patient-id",
        "EXPORT-1",
        "--to",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    files = {p.stem: p.read_bytes() for p in out.rglob("*.dcm")}
    assert files == sent
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert {f["sha256"] for f in manifest["files"]} == {
        hashlib.sha256(data).hexdigest() for data in sent.values()
    }
    missing = hounsfield_cli(server.data_dir, "patient", "erase", "--patient-id", "NOBODY", "--yes")
    assert missing.returncode == 1 and "no study" in missing.stderr
