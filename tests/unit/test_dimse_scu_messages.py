"""The messages of our Verification, Query/Retrieve and N-EVENT-REPORT SCU (PS3.7 9.3.2,
9.3.4, 9.3.5, 10.3.1), cross-checked with pynetdicom's DIMSE message classes: what we send is
what pynetdicom decodes, and what pynetdicom encodes as an SCP is what we read. The two ends
of a socket pair stand in for the network, so the PDV framing is the real one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_FIND_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
    N_EVENT_REPORT_RQ,
    DIMSEMessage,
)
from pynetdicom.dimse_primitives import C_FIND, C_MOVE
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

from hounsfield.adapters import dimse_scu
from hounsfield.adapters.dimse_association import ScuAssociation, ScuOptions
from hounsfield.domain.dimse_dataset import encode_identifier
from hounsfield.domain.pdu import (
    HEADER,
    PduType,
    ProposedContext,
    RoleSelection,
    decode_associate_rq,
    encode_associate_ac,
)
from hounsfield.domain.pdu_requestor import decode_associate_ac, encode_associate_rq
from hounsfield.ports.dicom_network import DicomNetworkError

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
COMMITMENT = "1.2.840.10008.1.20.1"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


@pytest.fixture(params=[EXPLICIT, IMPLICIT])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[ScuAssociation, socket.socket]]:
    """Our association on one end (context 1 accepted in the parametrised syntax, a peer
    Maximum Length of 256 so messages span several PDVs) and the peer's socket on the other."""
    ours, theirs = socket.socketpair()
    association = ScuAssociation(ours, "PEER", ScuOptions(dimse_timeout=5, network_timeout=5))
    association.contexts = {1: (STUDY_FIND, request.param)}
    association.fragment = 250
    theirs.settimeout(5)
    try:
        yield association, theirs
    finally:
        association.drop()
        theirs.close()


def syntax_of(association: ScuAssociation) -> str:
    return association.contexts[1][1]


def receive(sock: socket.socket, message: DIMSEMessage) -> DIMSEMessage:
    """Feed the P-DATA-TF PDUs we sent to a pynetdicom message until it is complete."""
    while True:
        header = sock.recv(6, socket.MSG_WAITALL)
        pdu_type, _, length = HEADER.unpack(header)
        assert pdu_type == PduType.P_DATA_TF
        pdu = P_DATA_TF()
        pdu.decode(header + sock.recv(length, socket.MSG_WAITALL))
        if message.decode_msg(pdu.to_primitive()):
            return message


def send(sock: socket.socket, message: DIMSEMessage, max_pdu: int = 512) -> None:
    """pynetdicom's encoding of a message, as the peer sends it."""
    for primitive in message.encode_msg(1, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        sock.sendall(pdu.encode())


def identifier(**values: str) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_c_echo_rq_is_what_pynetdicom_reads(
    pair: tuple[ScuAssociation, socket.socket],
) -> None:
    association, peer = pair
    association.send_command(
        1,
        {
            "AffectedSOPClassUID": dimse_scu.VERIFICATION,
            "CommandField": dimse_scu.C_ECHO_RQ,
            "MessageID": 3,
        },
    )
    primitive = receive(peer, C_ECHO_RQ()).message_to_primitive()
    assert primitive.MessageID == 3
    assert primitive.AffectedSOPClassUID == dimse_scu.VERIFICATION


def test_c_find_rq_and_its_identifier_are_what_pynetdicom_reads(
    pair: tuple[ScuAssociation, socket.socket],
) -> None:
    association, peer = pair
    syntax = syntax_of(association)
    query = identifier(
        QueryRetrieveLevel="STUDY", PatientName="MÜLLER^*", StudyInstanceUID="", Modality=""
    )
    query.SpecificCharacterSet = "ISO_IR 100"
    association.send_command(
        1,
        {
            "AffectedSOPClassUID": STUDY_FIND,
            "CommandField": dimse_scu.C_FIND_RQ,
            "MessageID": 9,
            "Priority": dimse_scu.MEDIUM,
        },
        encode_identifier(query, syntax),
    )
    primitive = receive(peer, C_FIND_RQ()).message_to_primitive()
    assert (primitive.MessageID, primitive.Priority) == (9, 0)
    assert primitive.AffectedSOPClassUID == STUDY_FIND
    received = decode(primitive.Identifier, syntax == IMPLICIT, True)
    assert received.PatientName == "MÜLLER^*"
    assert received.QueryRetrieveLevel == "STUDY"


def test_c_move_rq_carries_its_destination(pair: tuple[ScuAssociation, socket.socket]) -> None:
    association, peer = pair
    syntax = syntax_of(association)
    keys = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2.3")
    association.send_command(
        1,
        {
            "AffectedSOPClassUID": STUDY_MOVE,
            "CommandField": dimse_scu.C_MOVE_RQ,
            "MessageID": 4,
            "Priority": dimse_scu.MEDIUM,
            "MoveDestination": "ARCHIVE",
        },
        encode_identifier(keys, syntax),
    )
    primitive = receive(peer, C_MOVE_RQ()).message_to_primitive()
    assert primitive.MoveDestination == "ARCHIVE"
    assert primitive.MessageID == 4
    assert decode(primitive.Identifier, syntax == IMPLICIT, True).StudyInstanceUID == "1.2.3"


def test_pending_c_find_responses_with_identifiers_then_the_final_one(
    pair: tuple[ScuAssociation, socket.socket],
) -> None:
    """PS3.4 C.4.1.1.4: pending responses carry a match each; the final one none. The
    identifier spans several PDUs (pynetdicom fragments at 512 bytes)."""
    association, peer = pair
    syntax = syntax_of(association)
    long_description = "X" * 1500
    for status, found in (
        (0xFF00, identifier(StudyInstanceUID="1.2.1", ImageComments=long_description)),
        (0xFF01, identifier(StudyInstanceUID="1.2.2")),
        (0x0000, None),
    ):
        response = C_FIND()
        response.MessageIDBeingRespondedTo = 7
        response.AffectedSOPClassUID = STUDY_FIND
        response.Status = status
        if found is not None:
            response.Identifier = BytesIO(encode(found, syntax == IMPLICIT, True))
        message = C_FIND_RSP()
        message.primitive_to_message(response)
        send(peer, message)
    replies = [
        dimse_scu._reply(association, "C-FIND", dimse_scu.C_FIND_RSP, 7, syntax) for _ in range(3)
    ]
    assert [r.status for r in replies] == [0xFF00, 0xFF01, 0]
    first, second, final = (r.identifier for r in replies)
    assert first is not None and second is not None and final is None
    assert first["0020000D"]["Value"] == ["1.2.1"]
    assert first["00204000"]["Value"] == [long_description]
    assert second["0020000D"]["Value"] == ["1.2.2"]


def test_c_move_counts_and_the_failed_sop_instance_uid_list(
    pair: tuple[ScuAssociation, socket.socket],
) -> None:
    """PS3.4 C.4.2.1.4: pending responses count the sub-operations; a final Warning (B000)
    carries the Failed SOP Instance UID List (0008,0058) and the Error Comment passes."""
    association, peer = pair
    syntax = syntax_of(association)
    response = C_MOVE()
    response.MessageIDBeingRespondedTo = 2
    response.AffectedSOPClassUID = STUDY_MOVE
    response.Status = 0xFF00
    response.NumberOfRemainingSuboperations = 2
    response.NumberOfCompletedSuboperations = 1
    response.NumberOfFailedSuboperations = 0
    response.NumberOfWarningSuboperations = 0
    message = C_MOVE_RSP()
    message.primitive_to_message(response)
    send(peer, message)
    final = C_MOVE()
    final.MessageIDBeingRespondedTo = 2
    final.AffectedSOPClassUID = STUDY_MOVE
    final.Status = 0xB000
    final.NumberOfCompletedSuboperations = 1
    final.NumberOfFailedSuboperations = 2
    final.NumberOfWarningSuboperations = 0
    final.ErrorComment = "destination refused two"
    failed = Dataset()
    failed.FailedSOPInstanceUIDList = ["1.2.3.1", "1.2.3.2"]
    final.Identifier = BytesIO(encode(failed, syntax == IMPLICIT, True))
    message = C_MOVE_RSP()
    message.primitive_to_message(final)
    send(peer, message)
    pending = dimse_scu._reply(association, "C-MOVE", dimse_scu.C_MOVE_RSP, 2, syntax)
    assert pending.status == 0xFF00
    assert pending.counts == {
        "NumberOfRemainingSuboperations": 2,
        "NumberOfCompletedSuboperations": 1,
        "NumberOfFailedSuboperations": 0,
        "NumberOfWarningSuboperations": 0,
    }
    last = dimse_scu._reply(association, "C-MOVE", dimse_scu.C_MOVE_RSP, 2, syntax)
    assert last.status == 0xB000
    assert last.counts["NumberOfFailedSuboperations"] == 2
    assert "NumberOfRemainingSuboperations" not in last.counts
    assert last.error_comment == "destination refused two"
    assert last.identifier is not None
    assert last.identifier["00080058"]["Value"] == ["1.2.3.1", "1.2.3.2"]


def test_a_response_to_another_message_id_aborts(
    pair: tuple[ScuAssociation, socket.socket],
) -> None:
    association, peer = pair
    response = C_FIND()
    response.MessageIDBeingRespondedTo = 8
    response.AffectedSOPClassUID = STUDY_FIND
    response.Status = 0
    message = C_FIND_RSP()
    message.primitive_to_message(response)
    send(peer, message)
    with pytest.raises(DicomNetworkError, match="unexpected message"):
        dimse_scu._reply(association, "C-FIND", dimse_scu.C_FIND_RSP, 7, syntax_of(association))
    assert association.sock is None
    assert peer.recv(10)[0] == PduType.A_ABORT


def test_c_cancel_rq_is_what_pynetdicom_reads(pair: tuple[ScuAssociation, socket.socket]) -> None:
    """PS3.7 9.3.2.3: C-CANCEL-RQ names the request by Message ID Being Responded To; after
    it the SCU reads responses up to the final one (Cancel, FE00)."""
    association, peer = pair
    response = C_FIND()
    response.MessageIDBeingRespondedTo = 5
    response.AffectedSOPClassUID = STUDY_FIND
    response.Status = 0xFE00
    message = C_FIND_RSP()
    message.primitive_to_message(response)
    send(peer, message)
    dimse_scu._cancel(association, 1, "C-FIND", dimse_scu.C_FIND_RSP, 5)
    primitive = receive(peer, C_CANCEL_RQ()).message_to_primitive()
    assert primitive.MessageIDBeingRespondedTo == 5
    assert association.sock is not None  # still open, for the release


def test_n_event_report_rq_is_what_pynetdicom_reads(
    pair: tuple[ScuAssociation, socket.socket],
) -> None:
    association, peer = pair
    syntax = syntax_of(association)
    info = Dataset()
    info.TransactionUID = "1.2.840.99.1"
    association.send_command(
        1,
        {
            "AffectedSOPClassUID": COMMITMENT,
            "CommandField": dimse_scu.N_EVENT_REPORT_RQ,
            "MessageID": 1,
            "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
            "EventTypeID": 2,
        },
        encode_identifier(info, syntax),
    )
    primitive = receive(peer, N_EVENT_REPORT_RQ()).message_to_primitive()
    assert primitive.EventTypeID == 2
    assert primitive.AffectedSOPInstanceUID == "1.2.840.10008.1.20.1.1"
    assert decode(primitive.EventInformation, syntax == IMPLICIT, True).TransactionUID == (
        "1.2.840.99.1"
    )


def test_role_selection_is_proposed_and_its_answer_read() -> None:
    """PS3.7 D.3.3.4: the SCP/SCU Role Selection sub-item we propose is what pynetdicom
    reads; the answer our acceptor (as any) returns is what we act on."""
    data = encode_associate_rq(
        called_ae="MODALITY",
        calling_ae="HOUNSFIELD",
        contexts=[ProposedContext(1, COMMITMENT, [EXPLICIT, IMPLICIT])],
        max_length=0,
        implementation_class_uid="2.25.42",
        implementation_version_name="HOUNSFIELD",
        roles=[RoleSelection(COMMITMENT, scu_role=False, scp_role=True)],
    )
    rq = A_ASSOCIATE_RQ()
    rq.decode(data)
    [role] = [
        item
        for item in rq.to_primitive().user_information
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    ]
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (COMMITMENT, False, True)
    parsed = decode_associate_rq(data[6:])
    ac = encode_associate_ac(
        parsed,
        [],
        max_length=0,
        implementation_class_uid="2.25.7",
        implementation_version_name="X",
        roles=[RoleSelection(COMMITMENT, scu_role=False, scp_role=True)],
    )
    assert decode_associate_ac(ac[6:]).roles == {COMMITMENT: (False, True)}
