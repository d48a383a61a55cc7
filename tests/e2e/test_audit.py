"""The audit trail through the real server: one PS3.15 A.5.3 message per STOW-RS, QIDO-RS,
WADO-RS, DELETE, C-STORE (storescu), C-FIND (findscu) and admin change, each valid against
the schema's required elements, and tampering with a stored record detected by
`hounsfield audit verify`."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from hounsfield.domain.audit import validate_xml
from tests.builders import make_instance, multipart, uid
from tests.conftest import (
    RunningServer,
    free_port,
    hounsfield_cli,
    require_tool,
    start_server,
    stop_server,
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    running = start_server(data_dir)
    try:
        yield running
    finally:
        stop_server(running)


def records(server: RunningServer, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(server.url + "/api/audit", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def wait_for(server: RunningServer, predicate: Any, **params: str) -> list[dict[str, Any]]:
    """The writer is asynchronous: poll until a matching record is there (bounded)."""
    deadline = time.monotonic() + 20
    while True:
        found = [r for r in records(server, **params) if predicate(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def query_of(record: dict[str, Any]) -> str:
    """The decoded ParticipantObjectQuery of a record ("" when it has none)."""
    root = ElementTree.fromstring(record["xml"])
    element = root.find("ParticipantObjectIdentification/ParticipantObjectQuery")
    return "" if element is None else base64.b64decode(element.text or "").decode("latin-1")


def check_xml(record: dict[str, Any]) -> None:
    assert validate_xml(record["xml"]) == [], record["xml"]


def test_http_events_are_audited(archive: RunningServer) -> None:
    study = uid()
    body, content_type = multipart([make_instance(study_uid=study, patient_id="PAT-AUDIT")])
    stow = httpx.post(
        archive.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    )
    assert stow.status_code == 200, stow.text

    stored = wait_for(archive, lambda r: r["action"] == "C", study=study)
    assert len(stored) == 1
    assert stored[0]["type"] == "instances-transferred"
    assert stored[0]["outcome"] == 0
    assert stored[0]["user"] == "127.0.0.1" and stored[0]["address"] == "127.0.0.1"
    assert stored[0]["patients"] == ["PAT-AUDIT"]  # resolved by the writer from the index
    assert "1.2.840.10008.5.1.4.1.1.2" in stored[0]["xml"]  # the SOP class, with its count
    check_xml(stored[0])

    assert httpx.get(archive.dicomweb + "/studies", params={"PatientID": "PAT-AUDIT"}).json()
    queries = wait_for(archive, lambda r: "PatientID=PAT-AUDIT" in query_of(r), type="query")
    assert queries, "no Query record for the QIDO-RS search"
    check_xml(queries[0])

    assert httpx.get(archive.dicomweb + f"/studies/{study}/metadata").status_code == 200
    reads = wait_for(archive, lambda r: r["action"] == "R", study=study)
    assert reads and reads[0]["type"] == "instances-transferred"
    assert reads[0]["patients"] == ["PAT-AUDIT"]
    check_xml(reads[0])

    assert httpx.delete(archive.dicomweb + f"/studies/{study}").status_code == 204
    deletes = wait_for(archive, lambda r: r["action"] == "D", study=study)
    assert deletes and deletes[0]["type"] == "instances-accessed"
    assert deletes[0]["patients"] == ["PAT-AUDIT"]  # named before the study was gone
    check_xml(deletes[0])

    missing = httpx.delete(archive.dicomweb + f"/studies/{uid()}")
    assert missing.status_code == 404
    failed = wait_for(archive, lambda r: r["outcome"] != 0, type="instances-accessed")
    assert failed, "a refused DELETE is audited with a failure outcome"


def test_admin_changes_and_audit_reads_are_audited(archive: RunningServer) -> None:
    url = archive.url + "/api/remote-aes/AUDITED"
    assert httpx.put(url, json={"host": "127.0.0.1", "port": 11112}).status_code == 201
    alerts = wait_for(
        archive, lambda r: "/api/remote-aes/AUDITED" in r["xml"], type="security-alert"
    )
    assert alerts and "110128" in alerts[0]["xml"]  # Network Configuration
    check_xml(alerts[0])
    reads = wait_for(archive, lambda r: True, type="audit-log-used")
    assert reads
    check_xml(reads[0])


def test_filters_and_paging(archive: RunningServer) -> None:
    assert httpx.get(archive.url + "/api/audit", params={"type": "nonsense"}).status_code == 400
    assert httpx.get(archive.url + "/api/audit", params={"since": "yesterday"}).status_code == 400
    for _ in range(3):
        assert httpx.get(archive.dicomweb + "/studies").status_code in (200, 204)
    assert len(wait_for(archive, lambda r: True, type="query")) >= 3
    first = records(archive, limit="2")
    assert len(first) == 2 and first[0]["seq"] > first[1]["seq"]
    nxt = records(archive, limit="2", before=str(first[1]["seq"]))
    assert nxt and nxt[0]["seq"] < first[1]["seq"]
    assert records(archive, since="2999-01-01T00:00:00Z") == []
    assert records(archive, user="nobody-at-all") == []


def test_dimse_store_and_find_are_audited(archive: RunningServer, tmp_path: Path) -> None:
    storescu, findscu = require_tool("storescu"), require_tool("findscu")
    study = uid()
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(2):
        data = make_instance(study_uid=study, patient_id="PAT-DIMSE", instance_number=n + 1)
        (folder / f"{n}.dcm").write_bytes(data)
    done = subprocess.run(
        [storescu, "-aet", "MODALITY1", "-aec", archive.ae_title, "+sd", "+r", "127.0.0.1"]  # noqa: RUF005
        + [str(archive.dimse_port), str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stored = wait_for(archive, lambda r: r["action"] == "C", study=study)
    assert len(stored) == 1  # one message for the association, not one per instance
    assert stored[0]["user"] == "MODALITY1"
    assert stored[0]["patients"] == ["PAT-DIMSE"]
    assert 'NumberOfInstances="2"' in stored[0]["xml"]
    check_xml(stored[0])

    found = subprocess.run(
        [findscu, "-aet", "VIEWER1", "-aec", archive.ae_title, "-S", "-k"]  # noqa: RUF005
        + ["QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1"]
        + [str(archive.dimse_port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr
    queries = wait_for(archive, lambda r: True, type="query", user="VIEWER1")
    assert queries and queries[0]["outcome"] == 0
    assert "1.2.840.10008.5.1.4.1.2.2.1" in queries[0]["xml"]  # Study Root FIND
    check_xml(queries[0])


def test_tampering_is_detected(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        body, content_type = multipart([make_instance(), make_instance()])
        httpx.post(
            server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
        ).raise_for_status()
        for _ in range(3):
            httpx.get(server.dicomweb + "/studies")
        assert len(wait_for(server, lambda r: r["seq"] >= 4)) >= 1
    finally:
        stop_server(server)
    intact = hounsfield_cli(data_dir, "audit", "verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "intact" in intact.stdout

    with sqlite3.connect(data_dir / "index.db") as conn:
        # Updates are refused by a trigger; someone with the database file can drop it.
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_log SET user_id = 'someone-else' WHERE seq = 2")
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET user_id = 'someone-else' WHERE seq = 2")
    broken = hounsfield_cli(data_dir, "audit", "verify")
    assert broken.returncode == 1
    assert "record 2" in broken.stderr and "hash" in broken.stderr


def test_retrieves_are_audited_as_begin_transferring(
    archive: RunningServer, tmp_path: Path
) -> None:
    getscu = require_tool("getscu")
    study = uid()
    body, content_type = multipart([make_instance(study_uid=study, patient_id="PAT-GET")])
    httpx.post(
        archive.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    ).raise_for_status()
    out = tmp_path / "got"
    out.mkdir()
    done = subprocess.run(
        [getscu, "-aet", "WORKSTATION", "-aec", archive.ae_title, "-S", "-od", str(out)]  # noqa: RUF005
        + ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1"]
        + [str(archive.dimse_port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.iterdir())) == 1
    begun = wait_for(archive, lambda r: r["user"] == "WORKSTATION", type="begin-transferring")
    assert begun and begun[0]["studies"] == [study] and begun[0]["outcome"] == 0
    assert begun[0]["patients"] == ["PAT-GET"]
    check_xml(begun[0])


def test_the_principal_is_the_audited_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")}
    env |= {"HOUNSFIELD_DATA_DIR": str(data_dir), "HOUNSFIELD_AUTH_API_KEYS": "true"}

    def key(role: str) -> str:
        created = subprocess.run(
            [sys.executable, "-m", "hounsfield.cli", "keys", "create", "--name", role]  # noqa: RUF005
            + ["--role", role, "--partition", "*"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env=env,
        )
        return created.stdout.strip().splitlines()[-1]

    viewer, auditor = key("viewer"), key("auditor")
    server = start_server(data_dir, {"HOUNSFIELD_AUTH_API_KEYS": "true"})
    try:
        headers = {"X-API-Key": viewer}
        assert httpx.get(server.dicomweb + "/studies", headers=headers).status_code in (200, 204)
        assert httpx.get(server.dicomweb + "/studies").status_code == 401
        denied = httpx.delete(server.dicomweb + f"/studies/{uid()}", headers=headers)
        assert denied.status_code == 403

        def trail(**params: str) -> list[dict[str, Any]]:
            deadline = time.monotonic() + 20
            while True:
                found: list[dict[str, Any]] = httpx.get(
                    server.url + "/api/audit", params=params, headers={"X-API-Key": auditor}
                ).json()
                if found or time.monotonic() > deadline:
                    return found
                time.sleep(0.1)

        queries = trail(type="query")
        assert queries and queries[0]["user"].startswith("api-key:")
        assert queries[0]["user"].endswith(":viewer")
        assert 'AlternativeUserID="api-key"' in queries[0]["xml"]
        refused = trail(type="user-authentication")
        assert refused and refused[0]["outcome"] == 4 and refused[0]["user"] == "127.0.0.1"
        alerts = [r for r in trail(type="security-alert") if "forbidden" in r["xml"]]
        assert alerts and alerts[0]["user"].endswith(":viewer") and alerts[0]["outcome"] == 4
        check_xml(alerts[0])
    finally:
        stop_server(server)


def test_a_move_names_its_destination(archive: RunningServer, tmp_path: Path) -> None:
    storescp, movescu = require_tool("storescp"), require_tool("movescu")
    study = uid()
    body, content_type = multipart([make_instance(study_uid=study, patient_id="PAT-MOVE")])
    httpx.post(
        archive.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    ).raise_for_status()
    port = free_port()
    out = tmp_path / "moved"
    out.mkdir()
    receiver = subprocess.Popen(
        [storescp, "-aet", "MOVEDEST", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        registered = httpx.put(
            archive.url + "/api/remote-aes/MOVEDEST", json={"host": "127.0.0.1", "port": port}
        )
        assert registered.status_code in (200, 201)
        time.sleep(0.3)
        done = subprocess.run(
            [movescu, "-aet", "MOVER", "-aec", archive.ae_title, "-aem", "MOVEDEST", "-S"]  # noqa: RUF005
            + ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"]
            + ["127.0.0.1", str(archive.dimse_port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    assert len(list(out.iterdir())) == 1
    begun = wait_for(archive, lambda r: r["user"] == "MOVER", type="begin-transferring")
    assert begun and begun[0]["studies"] == [study] and begun[0]["outcome"] == 0
    root = ElementTree.fromstring(begun[0]["xml"])
    roles = {
        p.get("UserID"): p.find("RoleIDCode").get("csd-code")  # type: ignore[union-attr]
        for p in root.findall("ActiveParticipant")
        if p.find("RoleIDCode") is not None
    }
    assert roles["MOVEDEST"] == "110152" and roles[archive.ae_title] == "110153"
    check_xml(begun[0])


def test_a_burst_of_reads_is_one_message(tmp_path: Path) -> None:
    """A viewer's many reads of one study within `audit_transfer_window` are one Instances
    Transferred message counting them (PS3.15 A.5.3.7); another study's read is its own, a
    failed read is recorded at once, and what is still gathered is written at shutdown."""
    data_dir = tmp_path / "data"
    server = start_server(data_dir, {"HOUNSFIELD_AUDIT_TRANSFER_WINDOW": "1"})
    first, second = uid(), uid()
    try:
        body, content_type = multipart(
            [make_instance(study_uid=first), make_instance(study_uid=second)]
        )
        httpx.post(
            server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
        ).raise_for_status()
        for _ in range(5):
            assert httpx.get(server.dicomweb + f"/studies/{first}/metadata").status_code == 200
        assert httpx.get(server.dicomweb + f"/studies/{second}/metadata").status_code == 200
        missing = httpx.get(server.dicomweb + f"/studies/{first}/series/{uid()}/metadata")
        assert missing.status_code == 404

        failed = wait_for(server, lambda r: r["outcome"] != 0 and r["action"] == "R", study=first)
        assert len(failed) == 1
        reads = wait_for(server, lambda r: r["action"] == "R" and r["outcome"] == 0, study=first)
        assert len(reads) == 1, reads
        assert "5 HTTP requests" in reads[0]["xml"]
        check_xml(reads[0])
        other = wait_for(server, lambda r: r["action"] == "R", study=second)
        assert len(other) == 1 and "HTTP requests" not in other[0]["xml"]

        # A burst still open when the server stops is written, not lost.
        assert httpx.get(server.dicomweb + f"/studies/{second}/metadata").status_code == 200
    finally:
        stop_server(server)
    with sqlite3.connect(data_dir / "index.db") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'R' AND study_uids LIKE ?",
            (f"%{second}%",),
        ).fetchone()
    assert count == 2
