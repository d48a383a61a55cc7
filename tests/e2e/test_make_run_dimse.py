"""`make run` serves DIMSE on HOUNSFIELD_DIMSE_PORT under HOUNSFIELD_AE_TITLE (issue 3)."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from tests.builders import make_dataset, to_bytes
from tests.conftest import require_tool, start_server, stop_server
from tests.interop.dimse_support import read_part10


def test_make_run_serves_dimse(tmp_path: Path) -> None:
    require_tool("make")
    server = start_server(tmp_path / "data", {"HOUNSFIELD_AE_TITLE": "MAKERUN"}, via_make=True)
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(Verification)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title="MAKERUN")
        assert assoc.is_established
        ds = make_dataset()
        ds.file_meta = read_part10(to_bytes(ds)).file_meta
        try:
            assert int(assoc.send_c_echo().Status) == 0
            assert int(assoc.send_c_store(ds).Status) == 0
        finally:
            assoc.release()
        found = httpx.get(
            server.dicomweb + "/instances", params={"SOPInstanceUID": ds.SOPInstanceUID}
        )
        assert found.status_code == 200
        assert found.json()[0]["00080018"]["Value"] == [ds.SOPInstanceUID]
    finally:
        stop_server(server)
