"""Byte-identical round trip for many SOP classes and transfer syntaxes: objects stored through
STOW-RS and C-STORE come back through C-GET (pynetdicom as the SCU, proposing for each SOP
class exactly the stored syntax) with the very bytes that were sent (DESIGN.md key idea 1)."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

from tests.builders import multipart
from tests.conftest import RunningServer, start_server, stop_server
from tests.interop.dimse_support import dataset_part
from tests.pixelsupport import decode_file

pytestmark = pytest.mark.services

#: Local pydicom test files (no download): SOP class / transfer syntax pairs.
FILES = (
    "CT_small.dcm",  # CT, explicit VR LE
    "MR_small.dcm",  # MR, explicit VR LE
    "rtplan.dcm",  # RT Plan, implicit VR LE
    "rtdose.dcm",  # RT Dose, implicit VR LE
    "JPEG2000.dcm",  # Secondary Capture, JPEG 2000
    "SC_rgb_rle.dcm",  # Secondary Capture, RLE lossless
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict]]:
    server = start_server(tmp_path_factory.mktemp("get-roundtrip") / "data")
    try:
        sent: dict[str, bytes] = {}
        for name in FILES:
            path = get_testdata_file(name, download=False)
            assert path is not None, name
            data = Path(str(path)).read_bytes()
            sent[str(dcmread(BytesIO(data)).SOPInstanceUID)] = data
        body, content_type = multipart(list(sent.values()))
        response = httpx.post(
            f"{server.dicomweb}/studies", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
        yield server, sent
    finally:
        stop_server(server)


def c_get(server: RunningServer, ds: Any, contexts: list[tuple[str, str]]) -> tuple[list, dict]:
    received: dict[str, bytes] = {}

    def on_store(event: Any) -> int:
        received[event.request.AffectedSOPInstanceUID] = event.request.DataSet.getvalue()
        return 0x0000

    ae = AE(ae_title="GETSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, [syntax])
        roles.append(build_role(sop_class, scp_role=True))
    assoc = ae.associate(
        "127.0.0.1",
        server.dimse_port,
        ae_title=server.ae_title,
        ext_neg=list({r.sop_class_uid: r for r in roles}.values()),
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    try:
        statuses = [
            (int(status.Status), status, identifier)
            for status, identifier in assoc.send_c_get(
                ds, StudyRootQueryRetrieveInformationModelGet
            )
        ]
    finally:
        assoc.release()
    return statuses, received


def study_identifier(uids: list[str]) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = uids
    return ds


def test_every_object_comes_back_byte_identical(archive: tuple[RunningServer, dict]) -> None:
    server, sent = archive
    parsed = {sop: dcmread(BytesIO(data)) for sop, data in sent.items()}
    contexts = sorted(
        {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in parsed.values()}
    )
    studies = sorted({str(ds.StudyInstanceUID) for ds in parsed.values()})
    statuses, received = c_get(server, study_identifier(studies), contexts)
    final = statuses[-1][1]
    assert statuses[-1][0] == 0x0000, final
    assert final.NumberOfCompletedSuboperations == len(sent)
    assert set(received) == set(sent)
    for sop, data in sent.items():
        assert received[sop] == dataset_part(data), parsed[sop].SOPClassUID.name


def test_with_only_explicit_vr_offered_everything_arrives_uncompressed(
    archive: tuple[RunningServer, dict],
) -> None:
    """Offer only explicit VR LE: implicit objects are rewritten (values unchanged) and
    compressed ones are decoded and sent uncompressed (PS3.4 C.4.3.3, PS3.5 8.2), their
    pixels equal to the stored ones decoded."""
    server, sent = archive
    parsed = {sop: dcmread(BytesIO(data)) for sop, data in sent.items()}
    contexts = sorted({(str(ds.SOPClassUID), "1.2.840.10008.1.2.1") for ds in parsed.values()})
    studies = sorted({str(ds.StudyInstanceUID) for ds in parsed.values()})
    statuses, received = c_get(server, study_identifier(studies), contexts)
    status, final, _ = statuses[-1]
    assert status == 0x0000
    assert final.NumberOfFailedSuboperations == 0
    assert set(received) == set(sent)
    compressed = {sop for sop, ds in parsed.items() if ds.file_meta.TransferSyntaxUID.is_compressed}
    assert compressed
    for sop in compressed:
        got = dcmread(BytesIO(received[sop]), force=True)
        _, frames = decode_file(sent[sop])
        expected = b"".join(f.astype(f.dtype.newbyteorder("<")).tobytes() for f in frames)
        assert got.PixelData[: len(expected)] == expected, parsed[sop].SOPClassUID.name
