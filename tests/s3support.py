"""An S3-compatible server for tests: moto's standalone server on a free loopback port.

One server per test process (pytest-xdist workers each start their own), started on first use
and stopped when the process exits. Each test works under its own key prefix in one bucket, so
tests never see each other's objects and nothing needs emptying.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, require_component

BUCKET = "hounsfield-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def environ(self) -> dict[str, str]:
        """The standard AWS variables that point a client (or the archive) at this server."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """An object written behind the archive's back (moto accepts unsigned requests)."""
        request = urllib.request.Request(f"{self.endpoint}/{bucket}/{key}", data, method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def object_keys(self, bucket: str, prefix: str) -> list[str]:
        """Keys in the bucket under `prefix`, read with a plain ListObjectsV2 request (not via
        the adapter under test)."""
        url = f"{self.endpoint}/{bucket}?list-type=2&prefix={prefix}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        return [part.split("</Key>")[0] for part in body.split("<Key>")[1:]]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_moto(log_dir: Path, attempts: int = 3) -> MotoServer | None:
    """Start `python -m moto.server` on a free port; None if moto is missing or does not start.
    A port found free can be taken by another test's server before moto binds it ("Address
    already in use"): a server that exits at once is started again on another port."""
    if importlib.util.find_spec("moto") is None:
        return None
    for _ in range(attempts):
        server = _start_moto_once(log_dir)
        if server is not None:
            return server
    return None


def _start_moto_once(log_dir: Path) -> MotoServer | None:
    port = free_port()
    log = log_dir / f"moto-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
    server = MotoServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            server.create_bucket(BUCKET)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
            continue
        return server
    server.stop()
    return None


_shared: list[MotoServer | None] = []


def shared_moto(log_dir: Path) -> MotoServer:
    """This process's moto server, started on first use; fails in CI when it cannot start."""
    if not _shared:
        server = start_moto(log_dir)
        _shared.append(server)
        if server is not None:
            atexit.register(server.stop)
    server = _shared[0]
    require_component("S3 (moto server)", server is not None)
    assert server is not None
    return server


def unique_prefix(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"
