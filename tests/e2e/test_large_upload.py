"""Bounded memory: a 256 MB object goes through STOW-RS and WADO-RS without the server ever
holding it (DESIGN.md §5: RSS < 500 MB while ingesting; a study is streamed, never held)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import make_dataset, to_bytes
from tests.conftest import start_server, stop_server

MIB = 1 << 20


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
def test_256_mb_instance_streams_through_with_bounded_memory(tmp_path: Path) -> None:
    ds = make_dataset(rows=4096, columns=4096, frames=8)  # 8 x 32 MiB frames
    data = to_bytes(ds)
    del ds
    assert len(data) > 256 * MIB
    boundary = "big-upload-boundary"

    def body() -> Iterator[bytes]:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        view = memoryview(data)
        for start in range(0, len(data), 4 * MIB):
            yield bytes(view[start : start + 4 * MIB])
        yield f"\r\n--{boundary}--\r\n".encode()

    server = start_server(tmp_path / "data")
    try:
        headers = {
            "content-type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        }
        response = httpx.post(
            server.dicomweb + "/studies", content=body(), headers=headers, timeout=300
        )
        assert response.status_code == 200, response.text
        url = response.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
        frame = httpx.get(url + "/frames/8", timeout=60)
        assert frame.status_code == 200
        frame_bytes = 4096 * 4096 * 2
        assert data[-frame_bytes:] in frame.content
        received = 0
        with httpx.stream(
            "GET", url, headers={"accept": "application/dicom; transfer-syntax=*"}, timeout=300
        ) as whole:
            for chunk in whole.iter_bytes():
                received += len(chunk)
        assert received == len(data)
        peak = peak_rss_bytes(server.process.pid)
        assert peak < 200 * MIB, f"server peak RSS {peak // MIB} MiB"
    finally:
        stop_server(server)
