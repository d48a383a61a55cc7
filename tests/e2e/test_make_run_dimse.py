"""`make run` serves DIMSE on HOUNSFIELD_DIMSE_PORT under HOUNSFIELD_AE_TITLE (issue 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from tests.builders import make_dataset, to_bytes
from tests.conftest import free_port, require_tool
from tests.interop.dimse_support import read_part10

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_dimse(tmp_path: Path) -> None:
    make = require_tool("make")
    port, dimse_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_HTTP_PORT": str(port),
        "HOUNSFIELD_DIMSE_PORT": str(dimse_port),
        "HOUNSFIELD_AE_TITLE": "MAKERUN",
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
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(Verification)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", dimse_port, ae_title="MAKERUN")
        assert assoc.is_established
        ds = make_dataset()
        ds.file_meta = read_part10(to_bytes(ds)).file_meta
        try:
            assert int(assoc.send_c_echo().Status) == 0
            assert int(assoc.send_c_store(ds).Status) == 0
        finally:
            assoc.release()
        found = httpx.get(
            url + "/dicom-web/instances", params={"SOPInstanceUID": ds.SOPInstanceUID}
        )
        assert found.status_code == 200
        assert found.json()[0]["00080018"]["Value"] == [ds.SOPInstanceUID]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
