"""PDU framing (PS3.8 9.3) and negotiation (PS3.8 9.3.2-9.3.4, PS3.7 D.3.3), cross-checked
with pynetdicom's PDU classes."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import build_context
from pynetdicom.transport import AddressInformation

from hounsfield.domain.pdu import (
    AbortReason,
    AbortSource,
    ContextResultCode,
    PduError,
    PduType,
    RejectResult,
    RejectSource,
    decode_abort,
    decode_associate_rq,
    encode_abort,
    encode_associate_ac,
    encode_pdata,
    encode_reject,
    iter_pdvs,
)
from hounsfield.frontends.dimse import negotiation
from hounsfield.frontends.dimse.pdu import read_pdu
from hounsfield.frontends.dimse.sender import MessageSender, fragment_size

CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"


def associate_rq(
    contexts: list[tuple[str, list[str]]],
    *,
    called: str = "HOUNSFIELD",
    calling: str = "MODALITY",
    roles: dict[str, tuple[bool, bool]] | None = None,
    app_context: str = "1.2.840.10008.3.1.1.1",
) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = app_context
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    primitive.calling_presentation_address = AddressInformation("127.0.0.1", 1)
    primitive.called_presentation_address = AddressInformation("127.0.0.1", 2)
    items = []
    for i, (abstract, syntaxes) in enumerate(contexts):
        cx = build_context(abstract, syntaxes)
        cx.context_id = 2 * i + 1
        items.append(cx)
    primitive.presentation_context_definition_list = items
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = 16384
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = "1.2.3.4"
    user = [max_length, impl]
    for uid, (scu, scp) in (roles or {}).items():
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = uid
        role.scu_role = scu
        role.scp_role = scp
        user.append(role)
    primitive.user_information = user
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def read(data: bytes, max_pdata: int = 16384) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        pdu = await read_pdu(reader_of(data), max_pdata)
        return pdu.type, pdu.body

    return asyncio.run(go())


def test_decode_a_pynetdicom_associate_rq() -> None:
    data = associate_rq([(CT, [RLE, EXPLICIT]), (FIND, [IMPLICIT])], roles={CT: (False, True)})
    pdu_type, body = read(data)
    assert pdu_type == PduType.A_ASSOCIATE_RQ
    request = decode_associate_rq(body)
    assert (request.called_ae, request.calling_ae) == ("HOUNSFIELD", "MODALITY")
    assert request.max_length == 16384
    assert request.implementation_class_uid == "1.2.3.4"
    assert [(c.id, c.abstract_syntax, c.transfer_syntaxes) for c in request.contexts] == [
        (1, CT, [RLE, EXPLICIT]),
        (3, FIND, [IMPLICIT]),
    ]
    assert request.roles[CT].scp_role and not request.roles[CT].scu_role


def test_associate_ac_is_what_pynetdicom_reads() -> None:
    request = decode_associate_rq(
        read(
            associate_rq(
                [(CT, [RLE, EXPLICIT]), ("1.2.3.999", [IMPLICIT])], roles={CT: (True, True)}
            )
        )[1]
    )
    acceptance = negotiation.negotiate_contexts(request, lambda uid: False)
    data = encode_associate_ac(
        request,
        acceptance.results,
        max_length=65536,
        implementation_class_uid="2.25.1",
        implementation_version_name="TEST",
        roles=acceptance.roles,
    )
    ac = A_ASSOCIATE_AC()
    ac.decode(data)
    primitive = ac.to_primitive()
    assert primitive.maximum_length_received == 65536
    assert primitive.implementation_class_uid == "2.25.1"
    results = {cx.context_id: cx for cx in primitive.presentation_context_definition_results_list}
    assert results[1].result == 0 and results[1].transfer_syntax[0] == RLE
    assert results[3].result == ContextResultCode.ABSTRACT_SYNTAX_NOT_SUPPORTED
    role = next(
        i for i in primitive.user_information if isinstance(i, SCP_SCU_RoleSelectionNegotiation)
    )
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (CT, True, True)


def test_negotiation_prefers_the_first_supported_syntax_and_rejects_properly() -> None:
    request = decode_associate_rq(
        read(
            associate_rq(
                [
                    (CT, ["1.2.3.4.5", RLE, EXPLICIT]),  # unknown syntax first
                    (CT, ["1.2.3.4.5"]),
                    ("1.2.3.999", [IMPLICIT]),
                    (negotiation.VERIFICATION, [EXPLICIT]),
                    (FIND, [RLE, IMPLICIT]),  # identifiers are never compressed
                ]
            )
        )[1]
    )
    acceptance = negotiation.negotiate_contexts(
        request, lambda uid: uid in (negotiation.VERIFICATION, FIND)
    )
    by_id = {r.id: r for r in acceptance.results}
    assert by_id[1].result == 0 and by_id[1].transfer_syntax == RLE
    assert by_id[3].result == ContextResultCode.TRANSFER_SYNTAXES_NOT_SUPPORTED
    assert by_id[5].result == ContextResultCode.ABSTRACT_SYNTAX_NOT_SUPPORTED
    assert by_id[7].result == 0
    assert by_id[9].result == 0 and by_id[9].transfer_syntax == IMPLICIT
    assert sorted(acceptance.contexts) == [1, 7, 9]
    assert not acceptance.contexts[1].scp_role  # default roles without role selection


def test_scp_role_is_granted_only_for_storage() -> None:
    request = decode_associate_rq(
        read(
            associate_rq(
                [(CT, [EXPLICIT]), (FIND, [IMPLICIT])],
                roles={CT: (False, True), FIND: (True, True)},
            )
        )[1]
    )
    acceptance = negotiation.negotiate_contexts(request, lambda uid: uid == FIND)
    assert acceptance.contexts[1].scp_role and not acceptance.contexts[1].scu_role
    assert acceptance.contexts[3].scu_role and not acceptance.contexts[3].scp_role
    assert {(r.sop_class_uid, r.scu_role, r.scp_role) for r in acceptance.roles} == {
        (CT, False, True),
        (FIND, True, False),
    }


@pytest.mark.parametrize(
    ("kwargs", "policy", "expected"),
    [
        ({"called": "OTHER"}, {}, (RejectSource.SERVICE_USER, 7)),
        ({"called": "OTHER"}, {"require_called_ae": False}, None),
        ({"calling": "EVIL"}, {"allowed_calling_aes": {"GOOD"}}, (RejectSource.SERVICE_USER, 3)),
        ({"calling": "GOOD"}, {"allowed_calling_aes": {"GOOD"}}, None),
        ({"app_context": "1.2.3"}, {}, (RejectSource.SERVICE_USER, 2)),
    ],
)
def test_association_rejections(
    kwargs: dict[str, str], policy: dict[str, object], expected: tuple[int, int] | None
) -> None:
    request = decode_associate_rq(read(associate_rq([(CT, [IMPLICIT])], **kwargs))[1])
    rejection = negotiation.check_request(
        request,
        negotiation.Policy("HOUNSFIELD", **policy),  # type: ignore[arg-type]
    )
    if expected is None:
        assert rejection is None
    else:
        assert rejection is not None
        assert rejection.result == RejectResult.PERMANENT
        assert (rejection.source, rejection.reason) == expected


def test_control_pdus() -> None:
    assert encode_reject(RejectResult.TRANSIENT, RejectSource.PRESENTATION_PROVIDER, 2) == bytes(
        (3, 0, 0, 0, 0, 4, 0, 2, 3, 2)
    )
    abort = encode_abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNRECOGNIZED_PDU)
    pdu_type, body = read(abort)
    assert pdu_type == PduType.A_ABORT
    assert decode_abort(body) == (2, 1)
    # the reason is not significant from the service user (PS3.8 9.3.8)
    assert decode_abort(encode_abort(AbortSource.SERVICE_USER, AbortReason.UNEXPECTED_PDU)[6:]) == (
        0,
        0,
    )


def test_pdata_framing_and_limits() -> None:
    pdu = encode_pdata(5, 0x03, b"abcd") + encode_pdata(5, 0x00, b"xy")
    pdu_type, body = read(pdu)
    assert pdu_type == PduType.P_DATA_TF
    assert [(c, m, bytes(f)) for c, m, f in iter_pdvs(body)] == [(5, 3, b"abcd")]
    with pytest.raises(PduError, match="exceeds the negotiated maximum"):
        read(encode_pdata(1, 0, bytes(5000)), max_pdata=4096)
    assert read(encode_pdata(1, 0, bytes(5000)), max_pdata=0)[0] == PduType.P_DATA_TF
    with pytest.raises(PduError) as info:
        read(b"\x09\x00\x00\x00\x00\x04abcd")
    assert info.value.reason == AbortReason.UNRECOGNIZED_PDU
    with pytest.raises(PduError):
        read(b"\x05\x00\x00\x00\x00\x05abcde")  # A-RELEASE-RQ is always 4 bytes long
    with pytest.raises(asyncio.IncompleteReadError):
        read(encode_pdata(1, 0, bytes(100))[:50])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\x00\x00\x01\x01\x00",  # PDV length 1 < 2
        b"\x00\x00\x00\x10\x01\x00abc",  # runs past the PDU
        b"\x00\x00\x00\x02\x01\x04",  # reserved control bits
    ],
)
def test_malformed_pdvs(body: bytes) -> None:
    with pytest.raises(PduError):
        list(iter_pdvs(body))


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_associate_rq_parser_raises_only_pdu_error(body: bytes) -> None:
    with contextlib.suppress(PduError):
        decode_associate_rq(bytes(2) + body)


@settings(max_examples=200)
@given(st.data())
def test_mutated_associate_rq_raises_only_pdu_error(data: st.DataObject) -> None:
    body = bytearray(associate_rq([(CT, [IMPLICIT, EXPLICIT]), (FIND, [IMPLICIT])])[6:])
    for _ in range(data.draw(st.integers(1, 8))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(PduError):
        decode_associate_rq(bytes(body))


class _Writer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    async def drain(self) -> None:
        return None


@pytest.mark.parametrize("source", ["bytes", "sync", "async"])
def test_sender_fragments_to_the_peer_maximum(source: str) -> None:
    payload = bytes(range(256)) * 100  # 25,600 bytes

    async def agen():  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 7000):
            yield payload[i : i + 7000]

    chunks: object = {
        "bytes": payload,
        "sync": [payload[i : i + 3000] for i in range(0, len(payload), 3000)],
        "async": agen(),
    }[source]

    async def go() -> bytes:
        writer = _Writer()
        sender = MessageSender(writer, 4096)  # type: ignore[arg-type]
        await sender.send(3, b"C" * 5000, chunks)  # type: ignore[arg-type]
        return bytes(writer.data)

    data = asyncio.run(go())
    pos = 0
    command = bytearray()
    dataset = bytearray()
    controls = []
    while pos < len(data):
        _, _, length = struct.unpack_from(">BBI", data, pos)
        assert length <= 4096
        for context_id, control, fragment in iter_pdvs(data[pos + 6 : pos + 6 + length]):
            assert context_id == 3
            controls.append(control)
            (command if control & 1 else dataset).extend(fragment)
        pos += 6 + length
    assert bytes(command) == b"C" * 5000
    assert bytes(dataset) == payload
    assert controls[0] == 1 and controls[1] == 3  # command: more, then last
    assert controls[-1] == 2 and all(c == 0 for c in controls[2:-1])
    assert fragment_size(0) > 1 << 16
