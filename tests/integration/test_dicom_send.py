"""The Storage SCU service (adapters/dimse_store_scu) against DCMTK storescp: byte-identical
sends, implicit/explicit VR rewriting, refused compressed syntaxes and unreachable peers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from hounsfield.adapters.blobs.memory import MemoryBlobStore
from hounsfield.adapters.dimse_client import SocketNetwork
from hounsfield.ports.dicom_network import OutgoingObject
from hounsfield.ports.index import RemoteAE, StoredInstance
from hounsfield.services.dicom_send import DicomSendService, SendOutcome
from tests.builders import make_dataset, to_bytes
from tests.conftest import free_port
from tests.interop.dimse_support import dataset_part, start_storescp

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.fixture
def storescp(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, int]]:
    options = getattr(request, "param", ())
    process, port = start_storescp(tmp_path / "received", *options)
    try:
        yield tmp_path / "received", port
    finally:
        process.terminate()
        process.wait(timeout=10)


def stored(blobs: MemoryBlobStore, tmp_path: Path, data: bytes) -> StoredInstance:
    ds = dcmread(__import__("io").BytesIO(data))
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    path.write_bytes(data)
    key = f"default/{ds.SOPInstanceUID}.dcm"
    blobs.put_file(key, path)
    return StoredInstance(
        partition="default",
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        sop_uid=ds.SOPInstanceUID,
        sop_class_uid=ds.SOPClassUID,
        transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
        blob_key=key,
        size=len(data),
        sha256="",
        pixel=None,
        bulk_ranges={},
        number_of_frames=1,
    )


def jpeg_instance() -> bytes:
    ds = make_dataset(rows=8, columns=8)
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xd9"])
    ds["PixelData"].VR = "OB"
    return to_bytes(ds, JPEGBaseline8Bit)


def service(blobs: MemoryBlobStore) -> DicomSendService:
    return DicomSendService(SocketNetwork(), blobs, calling_ae="HOUNSFIELD")


pytestmark = pytest.mark.services


def test_stored_bytes_arrive_unchanged(storescp: tuple[Path, int], tmp_path: Path) -> None:
    out, port = storescp
    blobs = MemoryBlobStore()
    originals = [to_bytes(make_dataset(instance_number=i)) for i in range(3)]
    instances = [stored(blobs, tmp_path, data) for data in originals]
    results = service(blobs).send_instances(RemoteAE("DEST", "127.0.0.1", port), instances)
    assert [r.outcome for r in results] == [SendOutcome.COMPLETED] * 3
    received = sorted(out.iterdir())
    assert len(received) == 3
    sent = {dataset_part(d) for d in originals}
    assert {dataset_part(p.read_bytes()) for p in received} == sent


@pytest.mark.parametrize("storescp", [("+xi",)], indirect=True)
def test_explicit_is_rewritten_as_implicit_when_only_that_is_accepted(
    storescp: tuple[Path, int], tmp_path: Path
) -> None:
    out, port = storescp
    blobs = MemoryBlobStore()
    original = make_dataset()
    instance = stored(blobs, tmp_path, to_bytes(original, EXPLICIT))
    [result] = service(blobs).send_instances(RemoteAE("DEST", "127.0.0.1", port), [instance])
    assert result.outcome is SendOutcome.COMPLETED
    assert result.transfer_syntax == IMPLICIT
    [received] = list(out.iterdir())
    got = dcmread(received)
    assert got.file_meta.TransferSyntaxUID == IMPLICIT
    assert got.PixelData == original.PixelData
    assert got.PatientName == original.PatientName


def test_compressed_object_the_peer_refuses_fails_alone(
    storescp: tuple[Path, int], tmp_path: Path
) -> None:
    out, port = storescp
    blobs = MemoryBlobStore()
    jpeg = stored(blobs, tmp_path, jpeg_instance())
    plain = stored(blobs, tmp_path, to_bytes(make_dataset()))
    results = service(blobs).send_instances(RemoteAE("DEST", "127.0.0.1", port), [jpeg, plain])
    assert [r.outcome for r in results] == [SendOutcome.FAILED, SendOutcome.COMPLETED]
    assert "transfer syntax" in results[0].reason
    assert len(list(out.iterdir())) == 1


def test_unreachable_peer_fails_every_sub_operation(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    instance = stored(blobs, tmp_path, to_bytes(make_dataset()))
    results = service(blobs).send_instances(
        RemoteAE("NOBODY", "127.0.0.1", free_port()), [instance, instance]
    )
    assert [r.outcome for r in results] == [SendOutcome.FAILED] * 2


def test_local_files_are_sent(storescp: tuple[Path, int], tmp_path: Path) -> None:
    _out, port = storescp
    data = to_bytes(make_dataset())
    path = tmp_path / "one.dcm"
    path.write_bytes(data)
    ds = dcmread(path)
    item = OutgoingObject(ds.SOPClassUID, ds.SOPInstanceUID, EXPLICIT, path)
    results = service(MemoryBlobStore()).send_files(RemoteAE("DEST", "127.0.0.1", port), [item])
    assert results[0].outcome is SendOutcome.COMPLETED
    assert service(MemoryBlobStore()).echo(RemoteAE("DEST", "127.0.0.1", port)) == 0
