"""Our Verification and Query/Retrieve SCU (adapters/dimse_scu) over real sockets: against our
own server, DCMTK dcmqrscp (with storescp as move destination) and scripted peers that abort,
release instead of answering, fall silent or are cancelled (PS3.7 9.3.2, 9.3.4, 9.3.5; PS3.4
C.4.1, C.4.2; PS3.8 7.2, 7.3)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hounsfield.adapters.dimse_client import SocketNetwork
from hounsfield.domain.commandset import decode_command, encode_command
from hounsfield.domain.dimse_dataset import decode_identifier, encode_identifier
from hounsfield.domain.pdu import (
    AbortReason,
    AbortSource,
    ContextResult,
    ContextResultCode,
    PduType,
    decode_associate_rq,
    encode_abort,
    encode_associate_ac,
    encode_pdata,
    encode_release_rp,
    encode_release_rq,
    iter_pdvs,
)
from hounsfield.ports.dicom_network import DicomNetworkError, DimseReply
from hounsfield.ports.index import RemoteAE
from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import (
    RunningServer,
    free_port,
    hounsfield_cli,
    require_tool,
    start_server,
    stop_server,
)
from tests.interop.dimse_support import ScriptedPeer, drain, recv_pdu, start_storescp

pytestmark = pytest.mark.services

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PATIENT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


def network(dimse_timeout: float = 60.0) -> SocketNetwork:
    return SocketNetwork(dimse_timeout=dimse_timeout, acse_timeout=10)


def keys(level: str, **values: str) -> dict[str, object]:
    """A DICOM JSON identifier; an empty value is a return key (PS3.4 C.2.2.1)."""
    tags = {
        "PatientID": ("00100020", "LO"),
        "PatientName": ("00100010", "PN"),
        "StudyInstanceUID": ("0020000D", "UI"),
        "StudyDescription": ("00081030", "LO"),
    }
    found: dict[str, object] = {"00080052": {"vr": "CS", "Value": [level]}}
    for keyword, value in values.items():
        tag, vr = tags[keyword]
        if not value:
            found[tag] = {"vr": vr}
        elif vr == "PN":
            found[tag] = {"vr": vr, "Value": [{"Alphabetic": value}]}
        else:
            found[tag] = {"vr": vr, "Value": [value]}
    return found


def value(reply: DimseReply, tag: str) -> object:
    assert reply.identifier is not None
    element = reply.identifier[tag]
    assert isinstance(element, dict)
    return element["Value"][0]


def write_study(folder: Path, patient_id: str, count: int) -> str:
    study = uid()
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        ds = make_dataset(study_uid=study, patient_id=patient_id, instance_number=n)
        (folder / f"{patient_id}-{n}.dcm").write_bytes(to_bytes(ds))
    return study


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    process, port = start_storescp(tmp_path / "received")
    try:
        yield tmp_path / "received", port
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- our own server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("qr-scu-own") / "data")
    try:
        yield running
    finally:
        stop_server(running)


def own_remote(server: RunningServer) -> RemoteAE:
    return RemoteAE(server.ae_title, "127.0.0.1", server.dimse_port)


def test_echo_find_and_move_against_our_server(
    own: RunningServer, storescp: tuple[Path, int], tmp_path: Path
) -> None:
    out, port = storescp
    study = write_study(tmp_path / "in", "QRSCU-OWN", 3)
    sent = hounsfield_cli(
        tmp_path / "client",
        "send",
        str(tmp_path / "in"),
        "--to",
        f"{own.ae_title}@127.0.0.1:{own.dimse_port}",
        "--quiet",
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert network().echo(own_remote(own), calling_ae="QRSCU") == 0

    replies = list(
        network().find(
            own_remote(own),
            calling_ae="QRSCU",
            sop_class_uid=STUDY_FIND,
            identifier=keys("STUDY", PatientID="QRSCU-OWN", StudyInstanceUID=""),
        )
    )
    assert [r.status for r in replies] == [0xFF00, 0]
    assert value(replies[0], "0020000D") == study
    assert replies[-1].identifier is None

    registered = httpx.put(
        f"{own.url}/api/remote-aes/DEST", json={"host": "127.0.0.1", "port": port}
    )
    assert registered.status_code in (200, 201)
    replies = list(
        network().move(
            own_remote(own),
            calling_ae="QRSCU",
            sop_class_uid=STUDY_MOVE,
            identifier=keys("STUDY", StudyInstanceUID=study),
            destination="DEST",
        )
    )
    final = replies[-1]
    assert final.status == 0
    assert final.counts["NumberOfCompletedSuboperations"] == 3
    assert final.counts.get("NumberOfFailedSuboperations", 0) == 0
    assert all(r.status == 0xFF00 for r in replies[:-1])
    assert len(list(out.iterdir())) == 3


def test_an_unknown_move_destination_is_a_final_status(own: RunningServer) -> None:
    """PS3.4 C.4.2.1.5: A801, Move Destination unknown, is the final response."""
    replies = list(
        network().move(
            own_remote(own),
            calling_ae="QRSCU",
            sop_class_uid=STUDY_MOVE,
            identifier=keys("STUDY", StudyInstanceUID="1.2.3.4"),
            destination="NOWHERE",
        )
    )
    assert [r.status for r in replies] == [0xA801]


def test_stopping_a_find_early_cancels_it_and_releases(own: RunningServer, tmp_path: Path) -> None:
    """The caller stops after the first match: C-CANCEL-RQ, the final response is read, the
    association is released (our server would log an abort otherwise), and the next one
    works."""
    for n in range(3):
        write_study(tmp_path / "in", f"QRSCU-CANCEL{n}", 1)
    sent = hounsfield_cli(
        tmp_path / "client",
        "send",
        str(tmp_path / "in"),
        "--to",
        f"{own.ae_title}@127.0.0.1:{own.dimse_port}",
        "--quiet",
    )
    assert sent.returncode == 0
    replies = network().find(
        own_remote(own),
        calling_ae="QRSCU",
        sop_class_uid=STUDY_FIND,
        identifier=keys("STUDY", PatientID="QRSCU-CANCEL*"),
    )
    assert isinstance(replies, Iterator)
    first = next(replies)
    assert first.status == 0xFF00
    replies.close()  # type: ignore[attr-defined]
    assert network().echo(own_remote(own), calling_ae="QRSCU") == 0


# -- DCMTK dcmqrscp -----------------------------------------------------------------------


@pytest.fixture
def dcmqrscp(tmp_path: Path, storescp: tuple[Path, int]) -> Iterator[tuple[RemoteAE, str]]:
    """dcmqrscp as QRSCP, knowing DEST (storescp) and DEAD (a closed port) as move
    destinations, holding one study of 3 instances stored with storescu; (peer, study)."""
    _, dest_port = storescp
    database = tmp_path / "qrdb"
    database.mkdir()
    port = free_port()
    config = tmp_path / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        "HostTable BEGIN\n"
        f"dest = (DEST, 127.0.0.1, {dest_port})\n"
        f"dead = (DEAD, 127.0.0.1, {free_port()})\n"
        "HostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nQRSCP {database} RW (100, 100mb) ANY\nAETable END\n"
    )
    process = subprocess.Popen(
        [require_tool("dcmqrscp"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        study = write_study(tmp_path / "qrin", "QRSCU-DCMTK", 3)
        stored = subprocess.run(
            [require_tool("storescu"), "-aec", "QRSCP", "127.0.0.1", str(port)]
            + [str(p) for p in sorted((tmp_path / "qrin").iterdir())],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert stored.returncode == 0, stored.stdout + stored.stderr
        yield RemoteAE("QRSCP", "127.0.0.1", port), study
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_echo_find_and_move_against_dcmqrscp(
    dcmqrscp: tuple[RemoteAE, str], storescp: tuple[Path, int]
) -> None:
    peer, study = dcmqrscp
    out, _ = storescp
    assert network().echo(peer, calling_ae="QRSCU") == 0
    replies = list(
        network().find(
            peer,
            calling_ae="QRSCU",
            sop_class_uid=STUDY_FIND,
            identifier=keys("STUDY", PatientID="QRSCU-DCMTK", StudyInstanceUID=""),
        )
    )
    assert [r.status for r in replies] == [0xFF00, 0]
    assert value(replies[0], "0020000D") == study
    replies = list(
        network().move(
            peer,
            calling_ae="QRSCU",
            sop_class_uid=STUDY_MOVE,
            identifier=keys("STUDY", StudyInstanceUID=study),
            destination="DEST",
        )
    )
    final = replies[-1]
    assert final.status == 0, final
    assert final.counts["NumberOfCompletedSuboperations"] == 3
    pending = [r for r in replies if r.status == 0xFF00]
    assert pending and "NumberOfRemainingSuboperations" in pending[0].counts
    assert len(list(out.iterdir())) == 3


def test_failed_suboperations_are_counted_and_listed(dcmqrscp: tuple[RemoteAE, str]) -> None:
    """The destination is down: every sub-operation fails; the final response (A702, out of
    resources: unable to perform sub-operations) counts them and lists their SOP Instance UIDs
    (PS3.4 C.4.2.1.4.2, C.4.2.3.1)."""
    peer, _ = dcmqrscp
    [final] = [
        r
        for r in network().move(
            peer,
            calling_ae="QRSCU",
            sop_class_uid=PATIENT_MOVE,
            identifier=keys("PATIENT", PatientID="QRSCU-DCMTK"),
            destination="DEAD",
        )
        if r.status != 0xFF00
    ]
    assert final.status in (0xA702, 0xB000)
    assert final.counts["NumberOfFailedSuboperations"] == 3
    assert final.counts["NumberOfCompletedSuboperations"] == 0
    assert final.identifier is not None
    failed = final.identifier["00080058"]
    assert isinstance(failed, dict) and len(failed["Value"]) == 3


# -- scripted peers ---------------------------------------------------------------------------


def read_request(sock: socket.socket) -> tuple[dict[str, object], bytes | None]:
    """One request: its command and its data set, if any."""
    command, data = bytearray(), bytearray()
    decoded: dict[str, object] | None = None
    while True:
        pdu_type, body = recv_pdu(sock)
        assert pdu_type == PduType.P_DATA_TF, pdu_type
        for _, control, fragment in iter_pdvs(body):
            (command if control & 1 else data).extend(fragment)
            if control == 3:
                found, has_data = decode_command(command)
                decoded = dict(found)
                if not has_data:
                    return decoded, None
            elif control == 2:
                assert decoded is not None
                return decoded, bytes(data)


def answer(
    sock: socket.socket,
    request: dict[str, object],
    status: int,
    identifier: dict[str, object] | None = None,
    syntax: str = EXPLICIT,
    **extra: int | str,
) -> None:
    response = encode_command(
        {
            "AffectedSOPClassUID": str(request["AffectedSOPClassUID"]),
            "CommandField": int(str(request["CommandField"])) | 0x8000,
            "MessageIDBeingRespondedTo": int(str(request["MessageID"])),
            "Status": status,
            **extra,
        },
        has_dataset=identifier is not None,
    )
    sock.sendall(encode_pdata(1, 3, response))
    if identifier is not None:
        sock.sendall(encode_pdata(1, 2, encode_identifier(identifier, syntax)))


def release(sock: socket.socket) -> None:
    assert recv_pdu(sock)[0] == PduType.A_RELEASE_RQ
    sock.sendall(encode_release_rp())


def match(study: str) -> dict[str, object]:
    return {"0020000D": {"vr": "UI", "Value": [study]}}


@pytest.mark.parametrize("syntax", [EXPLICIT, IMPLICIT])
def test_pending_matches_then_the_final_status(syntax: str) -> None:
    seen: list[dict[str, object]] = []

    def script(sock: socket.socket) -> None:
        request, data = read_request(sock)
        seen.append(request)
        assert data is not None
        assert decode_identifier(data, syntax).PatientID == "P1"
        answer(sock, request, 0xFF00, match("1.2.1"), syntax)
        answer(sock, request, 0xFF01, match("1.2.2"), syntax)
        answer(sock, request, 0x0000)
        release(sock)

    peer = ScriptedPeer(script, syntax=syntax)
    replies = list(
        network().find(
            RemoteAE("PEER", "127.0.0.1", peer.port),
            calling_ae="QRSCU",
            sop_class_uid=STUDY_FIND,
            identifier=keys("STUDY", PatientID="P1", StudyInstanceUID=""),
        )
    )
    peer.join()
    assert [r.status for r in replies] == [0xFF00, 0xFF01, 0]
    assert [value(r, "0020000D") for r in replies[:2]] == ["1.2.1", "1.2.2"]
    [request] = seen
    assert request["CommandField"] == 0x0020 and request["Priority"] == 0
    assert request["AffectedSOPClassUID"] == STUDY_FIND


def test_move_counts_and_failure_list_pass_through() -> None:
    def script(sock: socket.socket) -> None:
        request, _ = read_request(sock)
        assert request["MoveDestination"] == "ARCHIVE"
        answer(
            sock,
            request,
            0xFF00,
            NumberOfRemainingSuboperations=1,
            NumberOfCompletedSuboperations=1,
            NumberOfFailedSuboperations=0,
            NumberOfWarningSuboperations=0,
        )
        answer(
            sock,
            request,
            0xA702,
            {"00080058": {"vr": "UI", "Value": ["1.2.3.9"]}},
            NumberOfCompletedSuboperations=1,
            NumberOfFailedSuboperations=1,
            NumberOfWarningSuboperations=0,
            ErrorComment="disk full",
        )
        release(sock)

    peer = ScriptedPeer(script)
    replies = list(
        network().move(
            RemoteAE("PEER", "127.0.0.1", peer.port),
            calling_ae="QRSCU",
            sop_class_uid=STUDY_MOVE,
            identifier=keys("STUDY", StudyInstanceUID="1.2.3"),
            destination="ARCHIVE",
        )
    )
    peer.join()
    pending, final = replies
    assert pending.counts["NumberOfRemainingSuboperations"] == 1
    assert final.status == 0xA702
    assert final.counts == {
        "NumberOfCompletedSuboperations": 1,
        "NumberOfFailedSuboperations": 1,
        "NumberOfWarningSuboperations": 0,
    }
    assert final.error_comment == "disk full"
    assert value(final, "00080058") == "1.2.3.9"


def test_a_cancelled_find_reads_the_final_response_and_releases() -> None:
    cancels: list[dict[str, object]] = []

    def script(sock: socket.socket) -> None:
        request, _ = read_request(sock)
        answer(sock, request, 0xFF00, match("1.2.1"))
        cancel, data = read_request(sock)
        assert data is None
        cancels.append(cancel)
        answer(sock, request, 0xFE00)
        release(sock)

    peer = ScriptedPeer(script)
    replies = network().find(
        RemoteAE("PEER", "127.0.0.1", peer.port),
        calling_ae="QRSCU",
        sop_class_uid=STUDY_FIND,
        identifier=keys("STUDY", StudyInstanceUID=""),
    )
    assert next(replies).status == 0xFF00
    replies.close()  # type: ignore[attr-defined]
    peer.join()
    [cancel] = cancels
    assert cancel["CommandField"] == 0x0FFF
    assert cancel["MessageIDBeingRespondedTo"] == 1


def test_a_peer_that_aborts_after_a_match() -> None:
    def script(sock: socket.socket) -> None:
        request, _ = read_request(sock)
        answer(sock, request, 0xFF00, match("1.2.1"))
        sock.sendall(encode_abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU))
        drain(sock)

    peer = ScriptedPeer(script)
    got: list[DimseReply] = []
    with pytest.raises(DicomNetworkError, match=r"aborted .*unexpected-PDU"):
        got.extend(
            network().find(
                RemoteAE("PEER", "127.0.0.1", peer.port),
                calling_ae="QRSCU",
                sop_class_uid=STUDY_FIND,
                identifier=keys("STUDY", StudyInstanceUID=""),
            )
        )
    peer.join()
    assert [r.status for r in got] == [0xFF00]


def test_a_peer_that_releases_instead_of_answering() -> None:
    def script(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(encode_release_rq())
        assert recv_pdu(sock)[0] == PduType.A_RELEASE_RP

    peer = ScriptedPeer(script)
    with pytest.raises(DicomNetworkError, match="released the association"):
        list(
            network().move(
                RemoteAE("PEER", "127.0.0.1", peer.port),
                calling_ae="QRSCU",
                sop_class_uid=STUDY_MOVE,
                identifier=keys("STUDY", StudyInstanceUID="1.2.3"),
                destination="ARCHIVE",
            )
        )
    peer.join()


def test_a_silent_peer_times_out_on_dimse_timeout() -> None:
    def script(sock: socket.socket) -> None:
        read_request(sock)
        drain(sock)  # never answers; our side aborts after dimse_timeout

    peer = ScriptedPeer(script)
    started = time.monotonic()
    with pytest.raises(DicomNetworkError, match="no answer"):
        network(dimse_timeout=0.5).echo(RemoteAE("PEER", "127.0.0.1", peer.port), calling_ae="Q")
    assert time.monotonic() - started < 5
    peer.join()


def test_a_peer_that_accepts_no_context_is_an_error() -> None:
    """An acceptor that refuses Study Root FIND (PS3.8 9.3.3.2): no request is sent, the
    association is released."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    released: list[int] = []

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            _, body = recv_pdu(conn)
            request = decode_associate_rq(body)
            refused = [
                ContextResult(c.id, ContextResultCode.ABSTRACT_SYNTAX_NOT_SUPPORTED, EXPLICIT)
                for c in request.contexts
            ]
            conn.sendall(
                encode_associate_ac(
                    request,
                    refused,
                    max_length=0,
                    implementation_class_uid="2.25.9",
                    implementation_version_name="X",
                    roles=[],
                )
            )
            pdu_type, _ = recv_pdu(conn)
            released.append(pdu_type)
            conn.sendall(encode_release_rp())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    with pytest.raises(DicomNetworkError, match="accepted no presentation context"):
        list(
            network().find(
                RemoteAE("PEER", "127.0.0.1", port),
                calling_ae="QRSCU",
                sop_class_uid=STUDY_FIND,
                identifier=keys("STUDY"),
            )
        )
    thread.join(timeout=10)
    listener.close()
    assert released == [PduType.A_RELEASE_RQ]
