"""Upper-layer PDUs (PS3.8 9.3): header checks, P-DATA-TF framing and the A-ASSOCIATE codec,
for both sides of an association: the acceptor (frontends/dimse) and our Storage SCU
(adapters/dimse_store_scu). Pure functions on bytes; the callers own the sockets.

Every PDU is a 6-byte header (type, reserved, 32-bit big-endian length) and a body. The PDV
items of a P-DATA-TF are sliced out of the body as memoryviews, never copied (the hot path of
C-STORE).

Malformed input raises `PduError`, which carries the A-ABORT reason the state machine sends
(PS3.8 9.3.8 Table 9-26): unrecognised PDU type → 1, a PDU that has the wrong length or an item
that runs past its parent → 6 (invalid PDU parameter value), an unknown item in a place where
only known ones are allowed → 4 (unrecognised PDU parameter).

The A-ASSOCIATE-RQ parser and the AC/RJ encoders are written here rather than taken from
pynetdicom so that every malformed length maps to a precise abort reason (and fuzzing finds no
unexpected exception type); the format is small and fixed (PS3.8 9.3.2-9.3.4, Annex D).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

APPLICATION_CONTEXT: Final = "1.2.840.10008.3.1.1.1"  # DICOM Application Context (PS3.7 A.2.1)

#: The PDU header: type, reserved, length (PS3.8 9.3.1).
HEADER = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
_PDV = struct.Struct(">IBB")


class PduType(enum.IntEnum):
    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class AbortReason(enum.IntEnum):
    """A-ABORT reason/diag when the source is the service provider (PS3.8 Table 9-26)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER = 6


class AbortSource(enum.IntEnum):
    SERVICE_USER = 0
    SERVICE_PROVIDER = 2


class PduError(ValueError):
    """A PDU that cannot be accepted; the association is aborted with `reason`."""

    def __init__(self, message: str, reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Pdu:
    type: int
    body: bytes


#: The biggest non-P-DATA PDU we read: an A-ASSOCIATE-RQ with 128 contexts of 20 transfer
#: syntaxes is ~70 KB; anything much larger is an attack on memory, not a negotiation.
MAX_CONTROL_PDU = 1 << 20
#: Bytes of PDV item header inside a P-DATA-TF: length (4), context id (1), control header (1).
PDV_OVERHEAD = 6


def check_header(pdu_type: int, length: int, max_pdata: int) -> None:
    """Validate a PDU header before its body is read, so that a hostile length never makes us
    allocate. `max_pdata` is the Maximum Length we announced (0 = unlimited): a P-DATA-TF
    beyond it violates PS3.8 D.1.1. Release and abort PDUs have a fixed body of 4 bytes
    (PS3.8 9.3.6-9.3.8), as does A-ASSOCIATE-RJ (9.3.4)."""
    if pdu_type == PduType.P_DATA_TF:
        if max_pdata and length > max_pdata:
            raise PduError(
                f"P-DATA-TF of {length} bytes exceeds the negotiated maximum of {max_pdata}",
                AbortReason.INVALID_PDU_PARAMETER,
            )
    elif pdu_type in (PduType.A_RELEASE_RQ, PduType.A_RELEASE_RP, PduType.A_ABORT):
        if length != 4:
            raise PduError(f"PDU type {pdu_type:#04x} with length {length}, expected 4")
    elif pdu_type == PduType.A_ASSOCIATE_RJ:
        if length != 4:
            raise PduError(f"A-ASSOCIATE-RJ with length {length}, expected 4")
    elif pdu_type in (PduType.A_ASSOCIATE_RQ, PduType.A_ASSOCIATE_AC):
        if length > MAX_CONTROL_PDU or length < 68:
            raise PduError(f"A-ASSOCIATE PDU with implausible length {length}")
    else:
        raise PduError(f"unrecognised PDU type {pdu_type:#04x}", AbortReason.UNRECOGNIZED_PDU)


def iter_pdvs(body: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """(presentation context id, message control header, fragment) for each PDV item of a
    P-DATA-TF body (PS3.8 9.3.5.1, E.2). Control bit 0: command (1) or data set (0); bit 1:
    last fragment. A P-DATA-TF holds at least one PDV."""
    view = memoryview(body)
    size = len(view)
    if size < PDV_OVERHEAD:
        raise PduError("P-DATA-TF without a PDV item")
    pos = 0
    while pos < size:
        if size - pos < PDV_OVERHEAD:
            raise PduError(f"truncated PDV item header at offset {pos}")
        length, context_id, control = _PDV.unpack_from(view, pos)
        if length < 2 or length > size - pos - 4:
            raise PduError(f"PDV item length {length} at offset {pos} is invalid")
        if control & 0xFC:
            raise PduError(f"PDV message control header {control:#04x} has reserved bits set")
        yield context_id, control, view[pos + PDV_OVERHEAD : pos + 4 + length]
        pos += 4 + length


def encode_pdata(context_id: int, control: int, fragment: bytes | memoryview) -> bytes:
    """A P-DATA-TF holding one PDV (one fragment per PDU keeps the framing simple)."""
    pdv_length = len(fragment) + 2
    return b"".join(
        (
            HEADER.pack(PduType.P_DATA_TF, 0, pdv_length + 4),
            _PDV.pack(pdv_length, context_id, control),
            fragment,
        )
    )


def encode_release_rq() -> bytes:
    return HEADER.pack(PduType.A_RELEASE_RQ, 0, 4) + bytes(4)


def encode_release_rp() -> bytes:
    return HEADER.pack(PduType.A_RELEASE_RP, 0, 4) + bytes(4)


def encode_abort(source: AbortSource, reason: AbortReason = AbortReason.NOT_SPECIFIED) -> bytes:
    """A-ABORT (PS3.8 9.3.8); the reason is significant only from the service provider."""
    reason_value = reason if source == AbortSource.SERVICE_PROVIDER else 0
    return HEADER.pack(PduType.A_ABORT, 0, 4) + bytes((0, 0, source, reason_value))


def decode_abort(body: bytes) -> tuple[int, int]:
    """(source, reason) of an A-ABORT."""
    return body[2], body[3]


class RejectResult(enum.IntEnum):
    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """A-ASSOCIATE-RJ source (PS3.8 Table 9-21)."""

    SERVICE_USER = 1
    ACSE_PROVIDER = 2
    PRESENTATION_PROVIDER = 3


class RejectReason:
    """Reason/diag per source (PS3.8 Table 9-21); the numbers repeat across sources, so these
    are plain constants named with their source."""

    NO_REASON = 1  # any source
    APPLICATION_CONTEXT_NOT_SUPPORTED = 2  # source 1
    CALLING_AE_NOT_RECOGNIZED = 3  # source 1
    CALLED_AE_NOT_RECOGNIZED = 7  # source 1
    PROTOCOL_VERSION_NOT_SUPPORTED = 2  # source 2
    TEMPORARY_CONGESTION = 1  # source 3
    LOCAL_LIMIT_EXCEEDED = 2  # source 3


def encode_reject(result: RejectResult, source: RejectSource, reason: int) -> bytes:
    return HEADER.pack(PduType.A_ASSOCIATE_RJ, 0, 4) + bytes((0, result, source, reason))


@dataclass(slots=True)
class ProposedContext:
    """A Presentation Context Item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""

    id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@dataclass(slots=True)
class RoleSelection:
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4): the requestor's proposed roles."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass(slots=True)
class AssociateRequest:
    """The parts of an A-ASSOCIATE-RQ (PS3.8 9.3.2) that negotiation uses."""

    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str = ""
    contexts: list[ProposedContext] = field(default_factory=list)
    max_length: int = 0  # 0 = unlimited (PS3.8 D.1.1)
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    roles: dict[str, RoleSelection] = field(default_factory=dict)
    async_ops: tuple[int, int] | None = None
    #: SOP Class Extended Negotiation sub-items (PS3.7 D.3.3.5): SOP class UID ->
    #: Service-class-application-information, as proposed.
    extended: dict[str, bytes] = field(default_factory=dict)
    raw_called_ae: bytes = b""
    raw_calling_ae: bytes = b""


def iter_items(data: bytes | memoryview, what: str) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        if len(view) - pos < 4:
            raise PduError(f"truncated item header in {what} at offset {pos}")
        item_type, _, length = _ITEM.unpack_from(view, pos)
        if length > len(view) - pos - 4:
            raise PduError(f"item {item_type:#04x} in {what} runs past its end")
        yield item_type, view[pos + 4 : pos + 4 + length]
        pos += 4 + length


def decode_uid(raw: memoryview, what: str) -> str:
    """A UID in an item value; NUL/space padding is tolerated (PS3.8 9.3.2.2.1 says none, but
    some implementations pad)."""
    try:
        return bytes(raw).decode("ascii").rstrip("\x00 ")
    except UnicodeDecodeError as exc:
        raise PduError(f"{what} is not an ASCII UID") from exc


def _ae(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").strip(" \x00")


def decode_associate_rq(body: bytes) -> AssociateRequest:
    """Parse the body of an A-ASSOCIATE-RQ (PS3.8 9.3.2, Table 9-11)."""
    if len(body) < 68:
        raise PduError("A-ASSOCIATE-RQ shorter than its fixed fields")
    version = struct.unpack_from(">H", body, 0)[0]
    request = AssociateRequest(
        protocol_version=version,
        called_ae=_ae(body[4:20]),
        calling_ae=_ae(body[20:36]),
        raw_called_ae=body[4:20],
        raw_calling_ae=body[20:36],
    )
    for item_type, value in iter_items(body[68:], "A-ASSOCIATE-RQ"):
        if item_type == 0x10:
            request.application_context = decode_uid(value, "application context name")
        elif item_type == 0x20:
            request.contexts.append(_decode_context(value))
        elif item_type == 0x50:
            _decode_user_information(value, request)
        else:
            raise PduError(
                f"unknown item {item_type:#04x} in A-ASSOCIATE-RQ",
                AbortReason.UNRECOGNIZED_PDU_PARAMETER,
            )
    if not request.application_context:
        raise PduError("A-ASSOCIATE-RQ without an Application Context item")
    return request


def _decode_context(value: memoryview) -> ProposedContext:
    if len(value) < 4:
        raise PduError("truncated Presentation Context item")
    context = ProposedContext(id=value[0], abstract_syntax="", transfer_syntaxes=[])
    for sub_type, sub in iter_items(value[4:], "Presentation Context item"):
        if sub_type == 0x30:
            context.abstract_syntax = decode_uid(sub, "abstract syntax name")
        elif sub_type == 0x40:
            context.transfer_syntaxes.append(decode_uid(sub, "transfer syntax name"))
        else:
            raise PduError(
                f"unknown sub-item {sub_type:#04x} in a Presentation Context item",
                AbortReason.UNRECOGNIZED_PDU_PARAMETER,
            )
    return context


def _decode_user_information(value: memoryview, request: AssociateRequest) -> None:
    """User Information sub-items (PS3.7 Annex D.3.3, PS3.8 D.1). Unknown sub-items are
    ignored: PS3.7 D.3.3 lets an acceptor ignore extended negotiation it does not support."""
    for sub_type, sub in iter_items(value, "User Information item"):
        if sub_type == 0x51:
            if len(sub) != 4:
                raise PduError("Maximum Length sub-item with a length other than 4")
            request.max_length = struct.unpack(">I", sub)[0]
        elif sub_type == 0x52:
            request.implementation_class_uid = decode_uid(sub, "implementation class UID")
        elif sub_type == 0x55:
            request.implementation_version_name = bytes(sub).decode("ascii", errors="replace")
        elif sub_type == 0x53:
            if len(sub) != 4:
                raise PduError("Asynchronous Operations Window sub-item of wrong length")
            invoked, performed = struct.unpack(">HH", sub)
            request.async_ops = (invoked, performed)
        elif sub_type == 0x54:
            if len(sub) < 4:
                raise PduError("truncated SCP/SCU Role Selection sub-item")
            uid_length = struct.unpack_from(">H", sub, 0)[0]
            if uid_length + 4 != len(sub):
                raise PduError("SCP/SCU Role Selection sub-item with inconsistent lengths")
            uid = decode_uid(sub[2 : 2 + uid_length], "role selection SOP class UID")
            request.roles[uid] = RoleSelection(
                uid, bool(sub[2 + uid_length]), bool(sub[3 + uid_length])
            )
        elif sub_type == 0x56:
            uid, info = _sop_class_item(sub, "SOP Class Extended Negotiation")
            request.extended.setdefault(uid, info)  # one per SOP class (D.3.3.5): first wins


def _sop_class_item(sub: memoryview, what: str) -> tuple[str, bytes]:
    """(SOP class UID, the rest) of a sub-item that starts with a UID length and a UID."""
    if len(sub) < 2:
        raise PduError(f"truncated {what} sub-item")
    uid_length = struct.unpack_from(">H", sub, 0)[0]
    if uid_length + 2 > len(sub):
        raise PduError(f"{what} sub-item with a UID longer than the item")
    return decode_uid(sub[2 : 2 + uid_length], f"{what} SOP class UID"), bytes(
        sub[2 + uid_length :]
    )


def encode_item(item_type: int, value: bytes) -> bytes:
    return _ITEM.pack(item_type, 0, len(value)) + value


@dataclass(frozen=True, slots=True)
class ContextResult:
    """One Presentation Context item of the A-ASSOCIATE-AC (PS3.8 9.3.3.2, Table 9-18)."""

    id: int
    result: int  # 0 acceptance, 1 user-rejection, 2 no-reason, 3 abstract syntax, 4 transfer
    transfer_syntax: str


class ContextResultCode(enum.IntEnum):
    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


def encode_associate_ac(
    request: AssociateRequest,
    results: list[ContextResult],
    *,
    max_length: int,
    implementation_class_uid: str,
    implementation_version_name: str,
    roles: list[RoleSelection],
    extended: Mapping[str, bytes] | None = None,
) -> bytes:
    """A-ASSOCIATE-AC (PS3.8 9.3.3). The AE title fields echo the request's (they "shall not
    be tested", PS3.8 Table 9-17). `extended` holds the SOP Class Extended Negotiation
    answers (PS3.7 D.3.3.5.2): SOP class UID -> Service-class-application-information."""
    items = [encode_item(0x10, APPLICATION_CONTEXT.encode())]
    for result in results:
        # A rejected context still carries a Transfer Syntax sub-item, whose value is not
        # tested (PS3.8 Table 9-18); we send the first proposed or implicit LE.
        sub = encode_item(0x40, result.transfer_syntax.encode())
        items.append(encode_item(0x21, bytes((result.id, 0, result.result, 0)) + sub))
    user = [encode_item(0x51, struct.pack(">I", max_length))]
    user.append(encode_item(0x52, implementation_class_uid.encode()))
    for role in roles:
        uid = role.sop_class_uid.encode()
        user.append(
            encode_item(
                0x54, struct.pack(">H", len(uid)) + uid + bytes((role.scu_role, role.scp_role))
            )
        )
    user.append(encode_item(0x55, implementation_version_name.encode()))
    for sop_class, info in (extended or {}).items():
        uid = sop_class.encode()
        user.append(encode_item(0x56, struct.pack(">H", len(uid)) + uid + info))
    items.append(encode_item(0x50, b"".join(user)))
    body = (
        struct.pack(">HH", 1, 0)
        + request.raw_called_ae.ljust(16, b" ")[:16]
        + request.raw_calling_ae.ljust(16, b" ")[:16]
        + bytes(32)
        + b"".join(items)
    )
    return HEADER.pack(PduType.A_ASSOCIATE_AC, 0, len(body)) + body
