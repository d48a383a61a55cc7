"""A requestor that releases (A-RELEASE-RQ) or aborts while the server waits for the response
to one of its own requests (a C-STORE sub-operation of C-GET, PS3.4 C.4.3.3) ends that wait at
once: the server's DIMSE timeout is set far beyond the client's socket timeout here, so a wait
that sat it out fails the test with a socket timeout instead of a response.

On release the C-GET still gets its final response (PS3.8 Sta8 allows P-DATA before the
A-RELEASE-RP), the unfinished sub-operations counted as failed and listed in the Failed SOP
Instance UID List (PS3.4 C.4.3.1.3.1), then A-RELEASE-RP."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet, Verification

from hounsfield.domain.commandset import decode_command, encode_command
from hounsfield.domain.dimse_dataset import decode_identifier, encode_identifier
from tests.builders import make_dataset, multipart, to_bytes, uid
from tests.conftest import RunningServer, start_server, stop_server
from tests.interop.dimse_support import associate_rq, connect, pdata, read_pdu, role_item

GET = str(StudyRootQueryRetrieveInformationModelGet)
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
P_DATA_TF, A_ASSOCIATE_AC, A_RELEASE_RP = 4, 2, 6
C_STORE_RQ, C_GET_RSP = 0x0001, 0x8010
SLICES = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("dimse-release") / "data",
        {"HOUNSFIELD_DIMSE_TIMEOUT": "3600", "HOUNSFIELD_DURABLE": "false"},
    )
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def study(server: RunningServer) -> tuple[str, set[str]]:
    """A fresh study of SLICES CT instances, stored through STOW-RS."""
    study_uid, series_uid = uid(), uid()
    datasets = [make_dataset(study_uid=study_uid, series_uid=series_uid) for _ in range(SLICES)]
    body, content_type = multipart([to_bytes(ds) for ds in datasets])
    response = httpx.post(
        f"{server.dicomweb}/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    return study_uid, {str(ds.SOPInstanceUID) for ds in datasets}


class Peer:
    """A raw C-GET SCU that accepts the Storage SCP role for CT (PS3.7 D.3.3.4)."""

    def __init__(self, server: RunningServer) -> None:
        self.sock = connect(server.dimse_port, timeout=30)
        self.sock.sendall(
            associate_rq(
                server.ae_title,
                [(1, GET, [ExplicitVRLittleEndian]), (3, CT_IMAGE, [ExplicitVRLittleEndian])],
                user_items=role_item(CT_IMAGE, scu=True, scp=True),
            )
        )
        assert read_pdu(self.sock)[0] == A_ASSOCIATE_AC

    def c_get(self, study_uid: str) -> None:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = study_uid
        command = encode_command(
            {"CommandField": 0x0010, "MessageID": 9, "AffectedSOPClassUID": GET, "Priority": 0},
            True,
        )
        self.sock.sendall(pdata(1, 3, command))
        self.sock.sendall(pdata(1, 2, encode_identifier(identifier, ExplicitVRLittleEndian)))

    def message(self) -> tuple[dict[str, Any], bytes]:
        """The next whole DIMSE message the server sends: command set and data set."""
        parts: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
        while True:
            pdu_type, body = read_pdu(self.sock)
            assert pdu_type == P_DATA_TF, f"PDU type {pdu_type} instead of a message"
            pos = 0
            while pos < len(body):
                (length,) = struct.unpack_from(">I", body, pos)
                control = body[pos + 5]
                is_command = bool(control & 1)
                parts[is_command].extend(body[pos + 6 : pos + 4 + length])
                pos += 4 + length
                if control & 2:
                    command, has_data = decode_command(bytes(parts[True]))
                    if not is_command or not has_data:
                        return command, bytes(parts[False])

    def answer_store(self, request: dict[str, Any], status: int = 0) -> None:
        response = {
            "CommandField": 0x8001,
            "MessageIDBeingRespondedTo": request["MessageID"],
            "AffectedSOPClassUID": request["AffectedSOPClassUID"],
            "AffectedSOPInstanceUID": request["AffectedSOPInstanceUID"],
            "Status": status,
        }
        self.sock.sendall(pdata(3, 3, encode_command(response, False)))

    def release(self) -> None:
        self.sock.sendall(b"\x05\x00\x00\x00\x00\x04" + bytes(4))


def assert_healthy(server: RunningServer) -> None:
    ae = AE(ae_title="CHECKER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()


@pytest.mark.parametrize("answered", [0, 1])
def test_release_while_a_sub_operation_waits_ends_the_c_get_at_once(
    server: RunningServer, study: tuple[str, set[str]], answered: int
) -> None:
    study_uid, sop_uids = study
    peer = Peer(server)
    peer.c_get(study_uid)
    stored: list[str] = []
    for _ in range(answered):
        request, data = peer.message()
        assert request["CommandField"] == C_STORE_RQ and data
        stored.append(request["AffectedSOPInstanceUID"])
        peer.answer_store(request)
        pending, _ = peer.message()
        assert pending["CommandField"] == C_GET_RSP and pending["Status"] == 0xFF00
    request, data = peer.message()
    assert request["CommandField"] == C_STORE_RQ and data
    peer.release()  # the C-STORE-RQ stays unanswered

    final, identifier = peer.message()  # at once, not after the DIMSE timeout
    assert final["CommandField"] == C_GET_RSP
    assert final["Status"] == (0xA702 if answered == 0 else 0xB000)
    assert final["NumberOfCompletedSuboperations"] == answered
    assert final["NumberOfFailedSuboperations"] == SLICES - answered
    assert final.get("NumberOfRemainingSuboperations", 0) == 0
    failed = decode_identifier(identifier, ExplicitVRLittleEndian).FailedSOPInstanceUIDList
    failed_uids = {failed} if isinstance(failed, str) else set(failed)
    assert failed_uids == sop_uids - set(stored)
    assert read_pdu(peer.sock)[0] == A_RELEASE_RP
    peer.sock.close()
    assert_healthy(server)


def test_abort_while_a_sub_operation_waits_frees_the_association(
    server: RunningServer, study: tuple[str, set[str]]
) -> None:
    """A-ABORT instead: nothing is answered, the server closes the connection at once and
    keeps serving (the abandoned C-GET does not hold the association's slot)."""
    peer = Peer(server)
    peer.c_get(study[0])
    request, _ = peer.message()
    assert request["CommandField"] == C_STORE_RQ
    peer.sock.sendall(b"\x07\x00\x00\x00\x00\x04" + bytes((0, 0, 0, 0)))
    try:
        closed = peer.sock.recv(65536) == b""
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    finally:
        peer.sock.close()
    assert closed, "the server kept the aborted association open"
    assert_healthy(server)
