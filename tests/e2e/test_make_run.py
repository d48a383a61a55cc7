"""The README's quick start: `make run` honours HOUNSFIELD_* and serves DICOMweb and /api."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.builders import make_instance, multipart, uid
from tests.conftest import require_tool, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_with_environment_settings(tmp_path: Path) -> None:
    require_tool("make")
    server = start_server(tmp_path / "data", via_make=True)
    try:
        study = uid()
        body, content_type = multipart([make_instance(study_uid=study)])
        stored = httpx.post(
            server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
        )
        assert stored.status_code == 200
        found = httpx.get(server.dicomweb + "/studies", params={"StudyInstanceUID": study})
        assert found.json()[0]["0020000D"]["Value"] == [study]
        assert (tmp_path / "data" / "index.db").exists()
        assert any((tmp_path / "data" / "blobs").rglob("*.dcm"))
    finally:
        stop_server(server)


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
