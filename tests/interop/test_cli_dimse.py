"""`hounsfield echo | send | find | move` against the real server and DCMTK storescp."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import (
    RunningServer,
    free_port,
    hounsfield_cli,
    require_tool,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("cli-dimse") / "data")
    try:
        yield running
    finally:
        stop_server(running)


def hounsfield(
    tmp_path: Path, *args: str, ae_title: str = "CLIENT"
) -> subprocess.CompletedProcess[str]:
    return hounsfield_cli(tmp_path / "client", *args, extra_env={"HOUNSFIELD_AE_TITLE": ae_title})


def test_echo_send_find_move(server: RunningServer, tmp_path: Path) -> None:
    target = f"{server.ae_title}@127.0.0.1:{server.dimse_port}"
    done = hounsfield(tmp_path, "echo", target)
    assert done.returncode == 0, done.stderr
    assert "0x0000" in done.stdout

    study = uid()
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for n in range(3):
        ds = make_dataset(study_uid=study, patient_id="CLI-1", instance_number=n)
        (folder / "sub" / f"{n}.dcm").write_bytes(to_bytes(ds))
    (folder / "notes.txt").write_text("not DICOM")
    done = hounsfield(tmp_path, "send", str(folder), "--to", target, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed 3, warning 0, failed 0, skipped 1" in done.stdout

    done = hounsfield(
        tmp_path,
        "find",
        "--to",
        target,
        "-k",
        "PatientID=CLI-1",
        "-k",
        "StudyInstanceUID",
        "-k",
        "NumberOfStudyRelatedInstances",
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    found = json.loads(line)
    assert found["0020000D"]["Value"] == [study]
    assert found["00201208"]["Value"] == [3]

    port = free_port()
    out = tmp_path / "moved"
    out.mkdir()
    storescp = subprocess.Popen(
        [require_tool("storescp"), "-aet", "DEST", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        httpx.put(f"{server.url}/api/remote-aes/DEST", json={"host": "127.0.0.1", "port": port})
        time.sleep(0.3)
        done = hounsfield(tmp_path, "move", study, "--from", target, "--to", "DEST")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "C-MOVE status 0x0000: completed 3" in done.stdout
        assert len(list(out.iterdir())) == 3
        done = hounsfield(tmp_path, "move", study, "--from", target, "--to", "NOWHERE")
        assert done.returncode == 1
        assert "0xA801" in done.stdout
    finally:
        storescp.terminate()
        storescp.wait(timeout=10)


def test_unknown_registry_name_is_a_clear_error(tmp_path: Path) -> None:
    done = hounsfield(tmp_path, "echo", "NOT-REGISTERED")
    assert done.returncode != 0
    assert "not a registered AE" in done.stderr


def test_fetch_a_study_from_another_archive_into_this_one(
    server: RunningServer, tmp_path: Path
) -> None:
    """ "Fetch study S from AE Y into this archive": a C-MOVE on Y whose destination is our own
    AE; Y's sub-operations arrive at our C-STORE SCP (PS3.4 C.4.2)."""
    here = start_server(tmp_path / "here", {"HOUNSFIELD_AE_TITLE": "ARCHIVE_B"})
    try:
        study = uid()
        folder = tmp_path / "in"
        folder.mkdir()
        for n in range(2):
            ds = make_dataset(study_uid=study, patient_id="FETCH-1", instance_number=n)
            (folder / f"{n}.dcm").write_bytes(to_bytes(ds))
        remote = f"{server.ae_title}@127.0.0.1:{server.dimse_port}"
        assert hounsfield(tmp_path, "send", str(folder), "--to", remote, "--quiet").returncode == 0
        registered = httpx.put(
            f"{server.url}/api/remote-aes/ARCHIVE_B",
            json={"host": "127.0.0.1", "port": here.dimse_port},
        )
        assert registered.status_code in (200, 201)
        # `fetch` is `move --to <our own AE title>`, run with the fetching archive's settings.
        done = hounsfield(tmp_path, "fetch", study, "--from", remote, ae_title="ARCHIVE_B")
        assert done.returncode == 0, done.stdout + done.stderr
        found = httpx.get(f"{here.dicomweb}/studies", params={"StudyInstanceUID": study})
        assert found.status_code == 200
        assert found.json()[0]["00201208"]["Value"] == [2]
    finally:
        stop_server(here)
