"""The README's quick start: `make run` honours HOUNSFIELD_* and serves DICOMweb and /api."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.builders import make_instance, multipart, uid
from tests.conftest import free_port, require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_with_environment_settings(tmp_path: Path) -> None:
    make = require_tool("make")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_HTTP_PORT": str(port),
        "HOUNSFIELD_DIMSE_PORT": str(free_port()),
        "HOUNSFIELD_DATA_DIR": str(tmp_path / "data"),
    }
    process = subprocess.Popen(
        [make, "-s", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "make run exited"
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "make run did not become ready"
            time.sleep(0.2)
        study = uid()
        body, content_type = multipart([make_instance(study_uid=study)])
        stored = httpx.post(
            url + "/dicom-web/studies", content=body, headers={"content-type": content_type}
        )
        assert stored.status_code == 200
        found = httpx.get(url + "/dicom-web/studies", params={"StudyInstanceUID": study})
        assert found.json()[0]["0020000D"]["Value"] == [study]
        assert (tmp_path / "data" / "index.db").exists()
        assert any((tmp_path / "data" / "blobs").rglob("*.dcm"))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_unknown_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOUNSFIELD_DATA_DIR": str(tmp_path),
        "HOUNSFIELD_HTTP_PROT": "9000",
    }
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "hounsfield.cli", "serve"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert b"HOUNSFIELD_HTTP_PROT" in result.stderr
