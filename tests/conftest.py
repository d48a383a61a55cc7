"""Shared fixtures: a real server process on a free port, and service/tool requirements.

Tests that need an external component (DCMTK, PostgreSQL...) call `require_component`: it skips
on a developer machine without the component, and fails in CI, where HOUNSFIELD_REQUIRE_SERVICES=1
says that everything must be present.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.builders import multipart


def require_component(name: str, available: bool) -> None:
    if available:
        return
    message = f"{name} is not available"
    if os.environ.get("HOUNSFIELD_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (HOUNSFIELD_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    require_component(f"the {tool} command", path is not None)
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    dimse_port: int = 0
    ae_title: str = "HOUNSFIELD"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"


ROOT = Path(__file__).resolve().parents[1]


def hounsfield_cli(
    data_dir: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `hounsfield` command as a user runs it on an archive's data directory, with none of
    this process's HOUNSFIELD_* variables: only `extra_env` adds configuration."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(data_dir),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "hounsfield.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stow(root: str, *parts: bytes) -> None:
    """Store DICOM files through STOW-RS (PS3.18 10.5) at `root`, a DICOMweb root or a
    partition's (`{dicomweb}/partitions/{name}`); any answer but 200 fails the test."""
    body, content_type = multipart(list(parts))
    response = httpx.post(f"{root}/studies", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def start_server(
    data_dir: Path, extra_env: dict[str, str] | None = None, *, via_make: bool = False
) -> RunningServer:
    """Start the archive on free ports: `python -m hounsfield.cli serve`, or with `via_make`
    the README's `make run` (which must honour the same HOUNSFIELD_* variables)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(data_dir),
        "HOUNSFIELD_HTTP_PORT": str(port),
        "HOUNSFIELD_DIMSE_PORT": str(free_port()),
        **(extra_env or {}),
    }
    dimse_port = int(env["HOUNSFIELD_DIMSE_PORT"])
    https = env.get("HOUNSFIELD_HTTP_TLS", "").lower() in ("1", "true", "yes", "on")
    # An HTTPS server is checked against its configured CA (tests/tlssupport.py).
    ca_file = env.get("HOUNSFIELD_TLS_CA_FILE")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    ae_title = env.get("HOUNSFIELD_AE_TITLE", "HOUNSFIELD")
    log = (data_dir.parent / f"server-{port}.log").open("wb")
    command = (
        [shutil.which("make") or "make", "-s", "-C", str(ROOT), "run"]
        if via_make
        else [sys.executable, "-m", "hounsfield.cli", "serve"]
    )
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            output = (data_dir.parent / f"server-{port}.log").read_text(errors="replace")
            raise RuntimeError(f"server exited with {process.returncode}:\n{output[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1, verify=verify).status_code == 200:
                return RunningServer(url, data_dir, process, log, dimse_port, ae_title)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    log.close()
    raise RuntimeError("server did not become ready within 120 s")


def stop_server(server: RunningServer) -> None:
    """Stop the server and everything it started (make, workers): its process group."""
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    server.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("archive") / "data"
    # The black-box suites run against the README's quick start, `make run`, configured only
    # through HOUNSFIELD_* variables.
    running = start_server(
        data_dir, {"HOUNSFIELD_CORS_ORIGINS": "https://viewer.example"}, via_make=True
    )
    try:
        yield running
    finally:
        stop_server(running)
