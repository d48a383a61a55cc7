"""HTJ2K copies through the real server: made by a job after STOW-RS, invisible to WADO-RS's
default (the stored bytes), used for decoded frames, not orphans for `hounsfield check`, and
removed with their study."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pydicom

from tests.builders import multipart
from tests.conftest import hounsfield_cli, start_server, stop_server
from tests.pixelsupport import corpus_bytes, decode_file, split_multipart

NAME = "MR_small_jp2klossless.dcm"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def test_copy_lifecycle(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        original = corpus_bytes(NAME)
        body, content_type = multipart([original])
        stored = httpx.post(
            f"{server.dicomweb}/studies", content=body, headers={"content-type": content_type}
        )
        assert stored.status_code == 200, stored.text
        deadline = time.monotonic() + 30
        jobs: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            jobs = httpx.get(f"{server.url}/api/jobs", params={"kind": "derive-htj2k"}).json()
            if jobs and jobs[0]["state"] == "succeeded":
                break
            time.sleep(0.2)
        assert [j["state"] for j in jobs] == ["succeeded"], jobs

        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(original))
        url = (
            f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        [copy_file] = list((data_dir / "blobs").rglob("*.htj2k"))
        syntax, copy_frames = decode_file(copy_file.read_bytes())
        _, expected = decode_file(original)
        assert syntax == HTJ2K_RPCL
        assert np.array_equal(copy_frames[0], expected[0])

        default = httpx.get(url, headers={"accept": "multipart/related; type=application/dicom"})
        [(_, part)] = split_multipart(default.headers["content-type"], default.content)
        assert part == original  # the untouched original
        frame = httpx.get(
            f"{url}/frames/1",
            headers={
                "accept": "multipart/related; type=application/octet-stream;"
                f" transfer-syntax={EXPLICIT_LE}"
            },
        )
        assert frame.status_code == 200, frame.text
        [(_, raw)] = split_multipart(frame.headers["content-type"], frame.content)
        assert raw == expected[0].astype(expected[0].dtype.newbyteorder("<")).tobytes()

        check = hounsfield_cli(data_dir, "check", "--quiet")
        assert check.returncode == 0, check.stdout + check.stderr

        assert httpx.delete(f"{server.dicomweb}/studies/{ds.StudyInstanceUID}").status_code in (
            200,
            202,
            204,
        )
        assert not copy_file.exists()
    finally:
        stop_server(server)
