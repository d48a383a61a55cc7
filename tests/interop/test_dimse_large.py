"""A 120 MB C-STORE streams through the server with bounded memory (DESIGN.md §5: a large
study is streamed, never held in memory) and comes back byte-identical through WADO-RS."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hounsfield.domain.commandset import encode_command
from tests.builders import make_dataset, to_bytes
from tests.conftest import RunningServer, start_server, stop_server
from tests.interop.dimse_support import associate_rq, connect, dataset_part, pdata, read_pdu

pytestmark = pytest.mark.slow
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("dimse-large") / "data")
    try:
        yield running
    finally:
        stop_server(running)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_large_c_store_is_streamed(server: RunningServer) -> None:
    ds = make_dataset(rows=512, columns=512, frames=230)  # 120 MB of pixels
    data = dataset_part(to_bytes(ds))
    del ds.PixelData
    before = rss_mb(server.process.pid)
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(rss_mb(server.process.pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    sock = connect(server.dimse_port, timeout=120)
    try:
        sock.sendall(
            associate_rq(server.ae_title, [(1, CT_IMAGE, [EXPLICIT_LE])], max_length=65536)
        )
        assert read_pdu(sock)[0] == 2
        command = {
            "CommandField": 1,
            "MessageID": 1,
            "Priority": 0,
            "AffectedSOPClassUID": CT_IMAGE,
            "AffectedSOPInstanceUID": ds.SOPInstanceUID,
        }
        sock.sendall(pdata(1, 3, encode_command(command, has_dataset=True)))  # type: ignore[arg-type]
        fragment = 131072 - 6
        for start in range(0, len(data), fragment):
            last = start + fragment >= len(data)
            sock.sendall(pdata(1, 2 if last else 0, data[start : start + fragment]))
        pdu_type, body = read_pdu(sock)
        assert pdu_type == 4
        assert struct.pack("<HHIH", 0, 0x0900, 2, 0) in body  # Status 0000
    finally:
        sock.close()
        done.set()
        watcher.join()
    assert max(peak) - before < 60, (before, max(peak))

    url = (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    assert _data_set_digest(url) == hashlib.sha256(data).hexdigest()


def _data_set_digest(url: str) -> str:
    """SHA-256 of the retrieved object's bytes after its File Meta Information, streamed."""
    digest = hashlib.sha256()
    head: bytes | None = b""
    with httpx.stream(
        "GET", url, headers={"accept": "application/dicom; transfer-syntax=*"}, timeout=120
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            if head is not None:
                head += chunk
                if len(head) < 4096:
                    continue
                digest.update(dataset_part(head))
                head = None
                continue
            digest.update(chunk)
    return digest.hexdigest()
