"""C-MOVE and C-GET of a JPEG 2000 object to DCMTK peers that accept only uncompressed
syntaxes: the archive decodes and re-encodes it (PS3.4 C.4.2.3, C.4.3.3; PS3.5 8.2) instead
of failing the sub-operation, and the pixels that arrive are the stored ones, decoded."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest

from tests.builders import multipart
from tests.conftest import RunningServer, free_port, require_tool, start_server, stop_server
from tests.interop.dimse_support import suboperation_counts as counts
from tests.pixelsupport import corpus_bytes, decode_file

pytestmark = pytest.mark.services
NAME = "MR_small_jp2klossless.dcm"
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("transcoded-qr") / "data")
    body, content_type = multipart([corpus_bytes(NAME)])
    stored = httpx.post(
        f"{running.dicomweb}/studies", content=body, headers={"content-type": content_type}
    )
    assert stored.status_code == 200, stored.text
    yield running
    stop_server(running)


def study_uid() -> str:
    return str(pydicom.dcmread(pydicom.filebase.DicomBytesIO(corpus_bytes(NAME))).StudyInstanceUID)


def scu(server: RunningServer, tool: str, *args: str) -> str:
    done = subprocess.run(
        [
            require_tool(tool),
            "-aet",
            "TESTSCU",
            "-aec",
            server.ae_title,
            *args,
            "127.0.0.1",
            str(server.dimse_port),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def assert_decoded_copy(received: Path) -> None:
    [path] = list(received.iterdir())
    syntax, frames = decode_file(path.read_bytes())
    _, expected = decode_file(corpus_bytes(NAME))
    assert syntax in UNCOMPRESSED
    assert len(frames) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))


def test_move_to_an_uncompressed_only_destination_transcodes(
    server: RunningServer, tmp_path: Path
) -> None:
    port, out = free_port(), tmp_path / "moved"
    out.mkdir()
    storescp = subprocess.Popen(  # without +xa: uncompressed syntaxes only
        [require_tool("storescp"), "-aet", "PLAIN", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        httpx.put(
            f"{server.url}/api/remote-aes/PLAIN", json={"host": "127.0.0.1", "port": port}
        ).raise_for_status()
        time.sleep(0.3)
        output = scu(
            server,
            "movescu",
            "-d",
            "-S",
            "-aem",
            "PLAIN",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study_uid()}",
        )
        assert counts(output) == {"Completed": 1, "Failed": 0, "Warning": 0}, output
        assert_decoded_copy(out)
    finally:
        storescp.terminate()
        storescp.wait(timeout=10)


def test_get_with_only_uncompressed_contexts_transcodes(
    server: RunningServer, tmp_path: Path
) -> None:
    out = tmp_path / "got"
    out.mkdir()
    output = scu(
        server,
        "getscu",
        "-d",
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study_uid()}",
    )
    assert counts(output) == {"Completed": 1, "Failed": 0, "Warning": 0}, output
    assert_decoded_copy(out)
