"""Our Storage SCU (adapters/dimse_store_scu) over real sockets: against DCMTK storescp, against
our own server, and against scripted peers that reject, abort, release or fall silent
(PS3.8 7.1-7.3, 9.3; PS3.7 9.3.1)."""

from __future__ import annotations

import io
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread

from hounsfield.adapters.dimse_client import SocketNetwork
from hounsfield.adapters.dimse_store_scu import SocketStoreSession
from hounsfield.domain.commandset import decode_command, encode_command
from hounsfield.domain.pdu import (
    HEADER,
    AbortReason,
    AbortSource,
    PduType,
    encode_abort,
    encode_pdata,
    encode_release_rp,
    encode_release_rq,
    iter_pdvs,
)
from hounsfield.ports.dicom_network import DicomNetworkError, OutgoingObject
from hounsfield.ports.index import RemoteAE
from tests.builders import make_dataset, to_bytes
from tests.conftest import RunningServer, free_port, start_server, stop_server
from tests.interop.dimse_support import (
    ScriptedPeer,
    dataset_part,
    drain,
    recv_pdu,
    start_storescp,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

pytestmark = pytest.mark.services


def chunks_of(data: bytes, size: int) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        for at in range(0, len(data), size):
            yield data[at : at + size]

    return chunks


def outgoing(data: bytes, chunk: int = 1 << 20) -> OutgoingObject:
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    return OutgoingObject(
        ds.SOPClassUID,
        ds.SOPInstanceUID,
        ds.file_meta.TransferSyntaxUID,
        chunks=chunks_of(data, chunk),
    )


def large_instance() -> bytes:
    """About 5 MB of pixel data: hundreds of PDUs at storescp's 16 KB Maximum Length."""
    return to_bytes(make_dataset(rows=1600, columns=1600, patient_id="LARGE"))


def network(dimse_timeout: float = 60.0) -> SocketNetwork:
    return SocketNetwork(dimse_timeout=dimse_timeout)


# -- DCMTK storescp ---------------------------------------------------------------------------


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    process, port = start_storescp(tmp_path / "received")
    try:
        yield tmp_path / "received", port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_large_object_arrives_byte_identical_in_many_pdus(
    storescp: tuple[Path, int], tmp_path: Path
) -> None:
    out, port = storescp
    large, small = large_instance(), to_bytes(make_dataset(), IMPLICIT)
    path = tmp_path / "small.dcm"
    path.write_bytes(small)
    session = network().open_store(
        RemoteAE("DEST", "127.0.0.1", port),
        calling_ae="HOUNSFIELD",
        contexts=[(CT, EXPLICIT), (CT, IMPLICIT)],
    )
    try:
        assert session.accepted_syntaxes(CT) == {EXPLICIT, IMPLICIT}
        assert session.store(outgoing(large, chunk=65_537)) == 0
        small_ds = dcmread(path)
        assert session.store(OutgoingObject(CT, small_ds.SOPInstanceUID, IMPLICIT, path=path)) == 0
    finally:
        session.close()
    received = {dataset_part(p.read_bytes()) for p in out.iterdir()}
    assert received == {dataset_part(large), dataset_part(small)}


def test_a_context_the_peer_refuses_is_not_accepted(storescp: tuple[Path, int]) -> None:
    """storescp takes uncompressed syntaxes only by default: JPEG Baseline is refused
    (PS3.8 9.3.3.2, result 4) and storing in it fails before anything is sent."""
    out, port = storescp
    session = network().open_store(
        RemoteAE("DEST", "127.0.0.1", port),
        calling_ae="HOUNSFIELD",
        contexts=[(CT, JPEG_BASELINE), (CT, EXPLICIT)],
    )
    try:
        assert session.accepted_syntaxes(CT) == {EXPLICIT}
        data = to_bytes(make_dataset())
        refused = OutgoingObject(CT, "1.2.3", JPEG_BASELINE, chunks=chunks_of(data, 1 << 20))
        with pytest.raises(ValueError, match="accepted no context"):
            session.store(refused)
        assert session.store(outgoing(data)) == 0  # the association is still usable
    finally:
        session.close()
    assert len(list(out.iterdir())) == 1


def test_an_unreachable_peer_is_a_network_error() -> None:
    with pytest.raises(DicomNetworkError, match="cannot reach"):
        network().open_store(
            RemoteAE("DEST", "127.0.0.1", free_port()),
            calling_ae="HOUNSFIELD",
            contexts=[(CT, EXPLICIT)],
        )


# -- our own server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("scu-own") / "data")
    try:
        yield running
    finally:
        stop_server(running)


def stored_copy(server: RunningServer, data: bytes) -> bytes:
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    response = httpx.get(
        f"{server.url}/wado",
        params={
            "requestType": "WADO",
            "studyUID": ds.StudyInstanceUID,
            "seriesUID": ds.SeriesInstanceUID,
            "objectUID": ds.SOPInstanceUID,
            "contentType": "application/dicom",
        },
        timeout=30,
    )
    response.raise_for_status()
    return response.content


def test_objects_stored_on_our_server_are_byte_identical(own: RunningServer) -> None:
    objects = [large_instance(), to_bytes(make_dataset()), to_bytes(make_dataset(), IMPLICIT)]
    session = network().open_store(
        RemoteAE(own.ae_title, "127.0.0.1", own.dimse_port),
        calling_ae="HOUNSFIELD",
        contexts=[(CT, EXPLICIT), (CT, IMPLICIT), ("1.2.3.999", EXPLICIT)],
    )
    try:
        assert session.accepted_syntaxes("1.2.3.999") == frozenset()
        assert [session.store(outgoing(data, chunk=4099)) for data in objects] == [0, 0, 0]
    finally:
        session.close()
    for data in objects:
        assert dataset_part(stored_copy(own, data)) == dataset_part(data)


def test_an_unknown_called_ae_is_rejected_with_its_reason(own: RunningServer) -> None:
    with pytest.raises(DicomNetworkError, match="called-AE-title-not-recognized"):
        network().open_store(
            RemoteAE("NOT_THE_ARCHIVE", "127.0.0.1", own.dimse_port),
            calling_ae="HOUNSFIELD",
            contexts=[(CT, EXPLICIT)],
        )


# -- scripted peers ---------------------------------------------------------------------------


class StorePeer(ScriptedPeer):
    def session(self, dimse_timeout: float = 60.0) -> SocketStoreSession:
        return network(dimse_timeout).open_store(
            RemoteAE("PEER", "127.0.0.1", self.port),
            calling_ae="HOUNSFIELD",
            contexts=[(CT, EXPLICIT)],
        )


def read_message(sock: socket.socket) -> tuple[dict[str, object], bytes]:
    """One C-STORE-RQ: its command and its data set."""
    command, data = bytearray(), bytearray()
    while True:
        pdu_type, body = recv_pdu(sock)
        assert pdu_type == PduType.P_DATA_TF, pdu_type
        for _, control, fragment in iter_pdvs(body):
            (command if control & 1 else data).extend(fragment)
            if control == 2:
                decoded, _ = decode_command(command)
                return dict(decoded), bytes(data)


def respond(sock: socket.socket, request: dict[str, object], status: int) -> None:
    response = encode_command(
        {
            "AffectedSOPClassUID": str(request["AffectedSOPClassUID"]),
            "CommandField": 0x8001,
            "MessageIDBeingRespondedTo": int(str(request["MessageID"])),
            "Status": status,
            "AffectedSOPInstanceUID": str(request["AffectedSOPInstanceUID"]),
        },
        has_dataset=False,
    )
    sock.sendall(encode_pdata(1, 3, response))


def test_the_command_carries_the_move_originator_and_statuses_pass_through() -> None:
    seen: list[dict[str, object]] = []
    data = to_bytes(make_dataset())

    def script(sock: socket.socket) -> None:
        for status in (0xB000, 0xA700):
            request, received = read_message(sock)
            assert received == dataset_part(data)
            seen.append(request)
            respond(sock, request, status)
        assert recv_pdu(sock)[0] == PduType.A_RELEASE_RQ
        sock.sendall(encode_release_rp())

    peer = StorePeer(script)
    session = peer.session()
    store = session.store
    assert store(outgoing(data), move_originator=("MOVER", 7)) == 0xB000
    assert store(outgoing(data)) == 0xA700
    session.close()
    peer.join()
    first, second = seen
    assert first["MoveOriginatorApplicationEntityTitle"] == "MOVER"
    assert first["MoveOriginatorMessageID"] == 7
    assert "MoveOriginatorApplicationEntityTitle" not in second
    assert (first["MessageID"], second["MessageID"]) == (1, 2)
    assert first["Priority"] == 0 and first["AffectedSOPClassUID"] == CT


def test_a_peer_that_aborts_mid_transfer_ends_the_association() -> None:
    def script(sock: socket.socket) -> None:
        recv_pdu(sock)  # the command
        recv_pdu(sock)  # the first data set fragment
        sock.sendall(encode_abort(AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER))
        drain(sock)

    peer = StorePeer(script, max_length=4096)
    session = peer.session()
    with pytest.raises(DicomNetworkError, match=r"aborted .*invalid-PDU-parameter-value"):
        session.store(outgoing(large_instance()))
    with pytest.raises(DicomNetworkError, match="has ended"):
        session.store(outgoing(to_bytes(make_dataset())))
    session.close()
    peer.join()


def test_a_peer_that_closes_mid_transfer_ends_the_association() -> None:
    def script(sock: socket.socket) -> None:
        recv_pdu(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    peer = StorePeer(script, max_length=4096)
    session = peer.session()
    with pytest.raises(DicomNetworkError):
        session.store(outgoing(large_instance()))
    peer.join()


def test_a_peer_that_releases_instead_of_answering() -> None:
    def script(sock: socket.socket) -> None:
        read_message(sock)
        sock.sendall(encode_release_rq())
        assert recv_pdu(sock)[0] == PduType.A_RELEASE_RP

    peer = StorePeer(script)
    session = peer.session()
    with pytest.raises(DicomNetworkError, match="released the association"):
        session.store(outgoing(to_bytes(make_dataset())))
    peer.join()


def test_a_silent_peer_times_out_on_dimse_timeout() -> None:
    def script(sock: socket.socket) -> None:
        read_message(sock)
        drain(sock)  # never answers; our side aborts after dimse_timeout

    peer = StorePeer(script)
    session = peer.session(dimse_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DicomNetworkError, match="no answer"):
        session.store(outgoing(to_bytes(make_dataset())))
    assert time.monotonic() - started < 5
    peer.join()


def test_a_release_collision_is_answered() -> None:
    """Both sides ask to release at once (PS3.8 9.2.2.3): the requestor answers the peer's
    A-RELEASE-RQ and then receives its own A-RELEASE-RP."""

    def script(sock: socket.socket) -> None:
        assert recv_pdu(sock)[0] == PduType.A_RELEASE_RQ
        sock.sendall(encode_release_rq())
        assert recv_pdu(sock)[0] == PduType.A_RELEASE_RP
        sock.sendall(encode_release_rp())

    peer = StorePeer(script)
    session = peer.session()
    session.close()
    peer.join()


def test_a_huge_pdu_length_is_refused_before_it_is_read() -> None:
    """A P-DATA-TF header announcing 2 GB: the SCU aborts (PS3.8 9.3.8, invalid PDU parameter)
    instead of allocating it."""
    answers: list[int] = []

    def script(sock: socket.socket) -> None:
        read_message(sock)
        sock.sendall(HEADER.pack(PduType.P_DATA_TF, 0, 0x7FFFFFFF))
        pdu_type, body = recv_pdu(sock)
        answers.extend((pdu_type, body[3]))

    peer = StorePeer(script)
    session = peer.session()
    with pytest.raises(DicomNetworkError, match="exceeds the negotiated maximum"):
        session.store(outgoing(to_bytes(make_dataset())))
    peer.join()
    assert answers == [PduType.A_ABORT, AbortReason.INVALID_PDU_PARAMETER]
