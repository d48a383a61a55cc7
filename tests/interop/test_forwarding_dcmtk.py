"""Forwarding rules end to end: the real server forwards to DCMTK's storescp through durable
jobs (services/forwarding.py), per instance and per stable study, retries while the
destination is down, dead-letters what cannot succeed, and lets an operator retry it through
the admin API and the CLI (`hounsfield jobs`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread

from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import RunningServer, free_port, require_tool, start_server, stop_server, stow

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("forwarding") / "data",
        {
            "HOUNSFIELD_JOBS_RETRY_BASE_SECONDS": "1",
            "HOUNSFIELD_JOBS_RETRY_MAX_SECONDS": "2",
            "HOUNSFIELD_SERIES_STABLE_SECONDS": "2",
            "HOUNSFIELD_STUDY_STABLE_SECONDS": "5",
        },
    )
    yield running
    stop_server(running)


class StoreScp:
    def __init__(self, aet: str, out: Path, port: int) -> None:
        self.aet, self.out, self.port = aet, out, port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.out.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [require_tool("storescp"), "-aet", self.aet, "-od", str(self.out), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def received(self) -> set[str]:
        return {str(dcmread(p).SOPInstanceUID) for p in self.out.iterdir() if p.is_file()}


@pytest.fixture
def destination(server: RunningServer, tmp_path: Path) -> Iterator[StoreScp]:
    aet = f"DEST{free_port() % 10000}"
    scp = StoreScp(aet, tmp_path / "received", free_port())
    response = httpx.put(
        f"{server.url}/api/remote-aes/{aet}", json={"host": "127.0.0.1", "port": scp.port}
    )
    assert response.status_code == 201, response.text
    yield scp
    scp.stop()


def put_rule(server: RunningServer, name: str, rule: dict[str, object]) -> None:
    response = httpx.put(f"{server.url}/api/forward-rules/{name}", json=rule)
    assert response.status_code == 201, response.text


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def jobs(server: RunningServer, **params: str) -> list[dict[str, object]]:
    response = httpx.get(f"{server.url}/api/jobs", params={"kind": "forward", **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, object]] = response.json()
    return found


def test_instances_matching_a_rule_are_forwarded(
    server: RunningServer, destination: StoreScp
) -> None:
    destination.start()
    put_rule(
        server,
        "ct-only",
        {"destination": destination.aet, "filters": {"Modality": "CT", "PatientID": "FWD-*"}},
    )
    study = uid()
    ct = [make_dataset(study_uid=study, patient_id="FWD-1", instance_number=n) for n in (1, 2)]
    mr = make_dataset(study_uid=study, patient_id="FWD-1", modality="MR")
    other_patient = make_dataset(patient_id="ELSEWHERE")
    stow(server.dicomweb, *(to_bytes(ds) for ds in [*ct, mr, other_patient]))
    wanted = {str(ds.SOPInstanceUID) for ds in ct}
    wait_for(lambda: destination.received() == wanted)
    wait_for(lambda: len(jobs(server, state="succeeded")) >= 2)
    time.sleep(1)  # nothing else arrives
    assert destination.received() == wanted
    done = [j for j in jobs(server) if j["payload"]["rule"] == "ct-only"]  # type: ignore[index]
    assert len(done) == 2 and all(j["state"] == "succeeded" for j in done)
    httpx.delete(f"{server.url}/api/forward-rules/ct-only")


def test_stable_study_is_forwarded_once_in_one_job_after_retries(
    server: RunningServer, destination: StoreScp
) -> None:
    put_rule(
        server,
        "stable-studies",
        {
            "destination": destination.aet,
            "trigger": "study-stable",
            "filters": {"PatientID": "STB"},
        },
    )
    study = uid()
    first = [make_dataset(study_uid=study, patient_id="STB", instance_number=n) for n in (1, 2)]
    stow(server.dicomweb, *(to_bytes(ds) for ds in first))
    later = make_dataset(study_uid=study, patient_id="STB", modality="SR", series_uid=uid())
    time.sleep(1)
    stow(server.dicomweb, to_bytes(later))  # within the quiet period: still one announcement
    # The destination is down: the job fails, is retried with back-off, and succeeds once
    # storescp starts.
    wait_for(lambda: any(j["attempts"] >= 1 and j["state"] == "queued" for j in jobs(server)))
    [job] = [j for j in jobs(server) if j["payload"]["rule"] == "stable-studies"]  # type: ignore[index]
    assert job["payload"]["study"] == study  # type: ignore[index]
    assert "series" not in job["payload"]  # type: ignore[operator]
    assert job["lastError"]
    destination.start()
    wanted = {str(ds.SOPInstanceUID) for ds in [*first, later]}
    wait_for(lambda: destination.received() == wanted)
    wait_for(lambda: httpx.get(f"{server.url}/api/jobs/{job['id']}").json()["state"] == "succeeded")
    assert len([j for j in jobs(server) if j["payload"]["rule"] == "stable-studies"]) == 1  # type: ignore[index]
    httpx.delete(f"{server.url}/api/forward-rules/stable-studies")


def test_dead_letters_are_listed_and_retried_by_the_operator(
    server: RunningServer, destination: StoreScp
) -> None:
    study = uid()
    sent = make_dataset(study_uid=study, patient_id="DEAD")
    stow(server.dicomweb, to_bytes(sent))
    late_aet = f"LATE{free_port() % 10000}"
    queued = httpx.post(f"{server.url}/api/forward", json={"destination": late_aet, "study": study})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job"]
    wait_for(lambda: httpx.get(f"{server.url}/api/jobs/{job_id}").json()["state"] == "dead")
    dead = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
    assert dead["attempts"] == 1  # an unknown destination is not retried
    assert late_aet in dead["lastError"]
    assert httpx.post(f"{server.url}/api/jobs/{job_id}/cancel").status_code == 409

    env = {
        **os.environ,
        "HOUNSFIELD_DATA_DIR": str(server.data_dir),
        "HOUNSFIELD_LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "hounsfield.cli", "jobs"]
    listed = subprocess.run(
        [*cli, "list", "--state", "dead"], env=env, capture_output=True, text=True, check=True
    )
    assert f"{job_id:>8}  forward    dead" in listed.stdout

    # The operator registers the destination and retries the dead job from the CLI.
    registered = httpx.put(
        f"{server.url}/api/remote-aes/{late_aet}",
        json={"host": "127.0.0.1", "port": destination.port},
    )
    assert registered.status_code == 201
    destination.start()
    retried = subprocess.run(
        [*cli, "retry", str(job_id)], env=env, capture_output=True, text=True, check=False
    )
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: httpx.get(f"{server.url}/api/jobs/{job_id}").json()["state"] == "succeeded")
    assert destination.received() == {str(sent.SOPInstanceUID)}
    again = subprocess.run(
        [*cli, "retry", str(job_id)], env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 1 and "succeeded: cannot retry" in again.stderr
    shown = subprocess.run(
        [*cli, "show", str(job_id)], env=env, capture_output=True, text=True, check=True
    )
    assert '"state": "succeeded"' in shown.stdout
    assert httpx.post(f"{server.url}/api/jobs/{job_id}/retry").status_code == 409


def test_rules_are_validated(server: RunningServer) -> None:
    bad = [
        ({}, "destination"),
        ({"destination": "X", "trigger": "whenever"}, "trigger"),
        ({"destination": "X", "filters": {"NoSuchKeyword": "1"}}, "NoSuchKeyword"),
        ({"destination": "X", "filters": {"StudyDate": "2024-01-01"}}, "StudyDate"),
        ({"destination": "X", "colour": "red"}, "colour"),
    ]
    for rule, mentioned in bad:
        response = httpx.put(f"{server.url}/api/forward-rules/r1", json=rule)
        assert response.status_code == 400, rule
        assert mentioned in response.text
    assert httpx.get(f"{server.url}/api/forward-rules/r1").status_code == 404
    ok = httpx.put(
        f"{server.url}/api/forward-rules/r1",
        json={"destination": "X", "filters": {"StudyDate": "20240101-"}, "enabled": False},
    )
    assert ok.status_code == 201
    assert httpx.get(f"{server.url}/api/forward-rules").json() == [
        {
            "name": "r1",
            "destination": "X",
            "partition": "default",
            "trigger": "instance",
            "filters": {"StudyDate": "20240101-"},
            "priority": 0,
            "maxAttempts": 10,
            "enabled": False,
        }
    ]
    assert httpx.delete(f"{server.url}/api/forward-rules/r1").status_code == 204


def test_a_separate_worker_process_runs_the_jobs(tmp_path: Path) -> None:
    """`serve` with jobs_concurrency=0 queues the jobs; `hounsfield worker` runs them."""
    data_dir = tmp_path / "data"
    settings = {"HOUNSFIELD_JOBS_CONCURRENCY": "0", "HOUNSFIELD_JOBS_RETRY_BASE_SECONDS": "1"}
    server = start_server(data_dir, settings)
    scp = StoreScp("WORKERDEST", tmp_path / "received", free_port())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(data_dir),
        "HOUNSFIELD_JOBS_RETRY_BASE_SECONDS": "1",
    }
    worker: subprocess.Popen[bytes] | None = None
    try:
        httpx.put(
            f"{server.url}/api/remote-aes/WORKERDEST",
            json={"host": "127.0.0.1", "port": scp.port},
        ).raise_for_status()
        put_rule(server, "all", {"destination": "WORKERDEST"})
        scp.start()
        sent = make_dataset(patient_id="W")
        stow(server.dicomweb, to_bytes(sent))
        time.sleep(1.5)
        [job] = jobs(server)
        assert job["state"] == "queued"  # no worker in the server
        worker = subprocess.Popen(
            [sys.executable, "-m", "hounsfield.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: scp.received() == {str(sent.SOPInstanceUID)})
        wait_for(lambda: jobs(server)[0]["state"] == "succeeded")
    finally:
        if worker is not None:
            worker.terminate()
            assert worker.wait(timeout=15) == 0  # SIGTERM: a clean stop
        scp.stop()
        stop_server(server)


def test_fetch_a_study_from_a_remote_archive_as_a_job(
    server: RunningServer, tmp_path: Path
) -> None:
    """`POST /api/fetch` on archive B: a C-MOVE on A with B as destination, run as a job; a
    study A lacks, and a source B does not know, end as dead letters with their reason."""
    here = start_server(tmp_path / "b", {"HOUNSFIELD_AE_TITLE": "FETCHER"})
    try:
        study = uid()
        stow(
            server.dicomweb,
            *(to_bytes(make_dataset(study_uid=study, instance_number=n)) for n in (1, 2)),
        )
        # A (AE HOUNSFIELD) may send to B; B knows A as a remote AE.
        for url, aet, port in (
            (server.url, "FETCHER", here.dimse_port),
            (here.url, server.ae_title, server.dimse_port),
        ):
            registered = httpx.put(
                f"{url}/api/remote-aes/{aet}", json={"host": "127.0.0.1", "port": port}
            )
            assert registered.status_code in (200, 201), registered.text

        def fetch(source: str, study_uid: str) -> dict[str, object]:
            queued = httpx.post(
                f"{here.url}/api/fetch", json={"source": source, "study": study_uid}
            )
            assert queued.status_code == 202, queued.text
            job_id = queued.json()["job"]

            def finished() -> bool:
                state = httpx.get(f"{here.url}/api/jobs/{job_id}").json()["state"]
                return state in ("succeeded", "dead")

            wait_for(finished)
            job: dict[str, object] = httpx.get(f"{here.url}/api/jobs/{job_id}").json()
            return job

        done = fetch(server.ae_title, study)
        assert done["state"] == "succeeded", done
        found = httpx.get(f"{here.dicomweb}/studies", params={"StudyInstanceUID": study})
        assert found.json()[0]["00201208"]["Value"] == [2]

        missing = fetch(server.ae_title, uid())
        assert missing["state"] == "dead" and "no instance" in str(missing["lastError"])
        unknown = fetch("NOT-REGISTERED", study)
        assert unknown["state"] == "dead" and "not registered" in str(unknown["lastError"])
    finally:
        stop_server(here)
