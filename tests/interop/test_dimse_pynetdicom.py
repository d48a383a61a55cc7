"""pynetdicom as SCU against the real server: byte-identical storage, negotiation results,
failure statuses (PS3.4 B.2.3) and concurrent associations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.association import Association
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

from hounsfield.frontends.dimse.store import PREAMBLE, file_meta
from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import RunningServer, start_server, stop_server
from tests.interop.dimse_support import (
    CORPUS,
    HEVC,
    HTJ2K,
    HTJ2K_LOSSLESS,
    MPEG4,
    count_instances,
    dataset_part,
    encapsulated_copy,
    read_part10,
    retrieve,
    unique_copy,
)

UNKNOWN_SOP_CLASS = "1.2.826.0.1.3680043.10.1234.99.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("dimse-pynetdicom") / "data")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(autouse=True)
def raw_datasets() -> Iterator[None]:
    """Send files as they are (the data set bytes after the meta), not re-encoded."""
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    yield
    _config.STORE_SEND_CHUNKED_DATASET = previous


def associate(
    server: RunningServer, contexts: list[tuple[str, list[str]]], **kwargs: object
) -> Association:
    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title, **kwargs)  # type: ignore[arg-type]
    assert assoc.is_established
    return assoc


def store_file(server: RunningServer, path: Path) -> int:
    meta = read_part10(path).file_meta
    assoc = associate(server, [(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])])
    try:
        status = assoc.send_c_store(path)
        return int(status.Status)
    finally:
        assoc.release()


@pytest.mark.parametrize(
    "source",
    [name for name, _ in CORPUS] + [HTJ2K_LOSSLESS, HTJ2K, MPEG4, HEVC],
)
def test_stored_data_set_is_byte_identical(
    server: RunningServer, tmp_path: Path, source: str
) -> None:
    path = (
        unique_copy(source, tmp_path)
        if source.endswith(".dcm")
        else encapsulated_copy(source, tmp_path)
    )
    assert store_file(server, path) == 0x0000
    sent = path.read_bytes()
    stored = retrieve(server.dicomweb, read_part10(path))
    assert dataset_part(stored) == dataset_part(sent)
    assert (
        read_part10(stored).file_meta.TransferSyntaxUID
        == read_part10(sent).file_meta.TransferSyntaxUID
    )


def test_echo_and_context_results(server: RunningServer) -> None:
    assoc = associate(
        server,
        [
            (Verification, [ImplicitVRLittleEndian]),
            (UNKNOWN_SOP_CLASS, [ImplicitVRLittleEndian]),
            (CTImageStorage, ["1.2.826.0.1.3680043.10.1234.99.2"]),  # an unknown syntax
            (MRImageStorage, ["1.2.826.0.1.3680043.10.1234.99.2", ExplicitVRLittleEndian]),
        ],
    )
    try:
        assert int(assoc.send_c_echo().Status) == 0x0000
        rejected = {cx.abstract_syntax: cx.result for cx in assoc.rejected_contexts}
        assert rejected == {UNKNOWN_SOP_CLASS: 0x03, CTImageStorage: 0x04}  # PS3.8 Table 9-18
        accepted = {cx.abstract_syntax: cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
        assert accepted[MRImageStorage] == ExplicitVRLittleEndian
        assert assoc.acceptor.maximum_length > 0
    finally:
        assoc.release()


def _part10_with_meta(path: Path, data_set: bytes, sop_class: str, sop_instance: str) -> Path:
    """A PS3.10 file whose meta announces one instance and whose data set is `data_set`."""
    header = PREAMBLE + file_meta(sop_class, sop_instance, ExplicitVRLittleEndian, "TEST")
    path.write_bytes(header + data_set)
    return path


def test_sop_instance_mismatch_is_a900(server: RunningServer, tmp_path: Path) -> None:
    announced = uid()
    actual = make_dataset()  # another SOP Instance UID inside
    path = _part10_with_meta(
        tmp_path / "mismatch.dcm", dataset_part(to_bytes(actual)), CTImageStorage, announced
    )
    assert store_file(server, path) == 0xA900
    assert count_instances(server.dicomweb, SOPInstanceUID=announced) == 0
    assert count_instances(server.dicomweb, SOPInstanceUID=actual.SOPInstanceUID) == 0


def test_sop_class_mismatch_is_a900(server: RunningServer, tmp_path: Path) -> None:
    ds = make_dataset()  # a CT data set announced as MR
    path = _part10_with_meta(
        tmp_path / "class.dcm", dataset_part(to_bytes(ds)), MRImageStorage, ds.SOPInstanceUID
    )
    assert store_file(server, path) == 0xA900


def test_not_a_data_set_is_c000(server: RunningServer, tmp_path: Path) -> None:
    sop = uid()
    path = _part10_with_meta(
        tmp_path / "garbage.dcm",
        b"%PDF-1.7 this is not a DICOM data set\n" * 20,
        CTImageStorage,
        sop,
    )
    status = store_file(server, path)
    assert status & 0xF000 == 0xC000, hex(status)
    assert count_instances(server.dicomweb, SOPInstanceUID=sop) == 0


def test_duplicate_is_success_and_keeps_the_first(server: RunningServer, tmp_path: Path) -> None:
    path = unique_copy("CT_small.dcm", tmp_path)
    assert store_file(server, path) == 0
    assert store_file(server, path) == 0
    assert count_instances(server.dicomweb, SOPInstanceUID=read_part10(path).SOPInstanceUID) == 1
