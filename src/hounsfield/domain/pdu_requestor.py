"""The association-requestor side of the A-ASSOCIATE codec (PS3.8 9.3.2-9.3.4, 9.3.8).

`domain.pdu` holds what the acceptor needs (parse the RQ, build the AC/RJ); this module holds
the mirror image, for an SCU: build the A-ASSOCIATE-RQ, parse the A-ASSOCIATE-AC, and turn the
numeric fields of an A-ASSOCIATE-RJ or A-ABORT into the words of PS3.8 Tables 9-21 and 9-26, so
that an operator reading "association rejected" also reads why.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from hounsfield.domain.pdu import (
    APPLICATION_CONTEXT,
    HEADER,
    ContextResult,
    PduError,
    PduType,
    ProposedContext,
    RoleSelection,
    decode_uid,
    encode_item,
    iter_items,
)

#: PS3.8 9.3.2: AE titles are 16 bytes of the default character repertoire, space padded.
AE_TITLE_LENGTH = 16


@dataclass(slots=True)
class AssociateAccept:
    """The parts of an A-ASSOCIATE-AC (PS3.8 9.3.3, Table 9-17) a requestor acts on."""

    application_context: str = ""
    #: One result per presentation context the acceptor answered, by context id.
    results: dict[int, ContextResult] = field(default_factory=dict)
    max_length: int = 0  # 0 = unlimited (PS3.8 D.1.1)
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    #: SCP/SCU Role Selection answers (PS3.7 D.3.3.4): SOP class UID -> (SCU role, SCP role).
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)


def ae_title_field(title: str) -> bytes:
    """The 16-byte AE title field of an A-ASSOCIATE-RQ (PS3.8 9.3.2, Table 9-11): 1 to 16
    characters of the default repertoire without backslash or control characters (PS3.5 6.2,
    AE), space padded."""
    stripped = title.strip(" ")
    raw = stripped.encode("ascii", errors="strict") if stripped.isascii() else b""
    if not raw or len(raw) > AE_TITLE_LENGTH or b"\\" in raw or any(c < 0x20 for c in raw):
        raise ValueError(f"invalid AE title {title!r}: 1 to 16 ASCII characters, no backslash")
    return raw.ljust(AE_TITLE_LENGTH, b" ")


def encode_associate_rq(
    *,
    called_ae: str,
    calling_ae: str,
    contexts: Sequence[ProposedContext],
    max_length: int,
    implementation_class_uid: str,
    implementation_version_name: str,
    roles: Sequence[RoleSelection] = (),
) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2): protocol version 1, the DICOM application context
    (PS3.7 A.2.1), one Presentation Context item per proposal (9.3.2.2) and a User Information
    item with Maximum Length (D.1), Implementation Class UID and Version Name (PS3.7 D.3.3.2)
    and one SCP/SCU Role Selection sub-item per entry of `roles` (PS3.7 D.3.3.4).
    No Asynchronous Operations Window is proposed, so the default of one outstanding
    operation applies (PS3.7 D.3.3.3)."""
    if not 1 <= len(contexts) <= 128:
        raise ValueError(f"{len(contexts)} presentation contexts: 1 to 128 may be proposed")
    items = [encode_item(0x10, APPLICATION_CONTEXT.encode())]
    for context in contexts:
        if not (context.id % 2 and 1 <= context.id <= 255):
            raise ValueError(f"presentation context id {context.id} is not an odd 1..255")
        subs = [encode_item(0x30, context.abstract_syntax.encode("ascii"))]
        subs += [encode_item(0x40, ts.encode("ascii")) for ts in context.transfer_syntaxes]
        items.append(encode_item(0x20, bytes((context.id, 0, 0, 0)) + b"".join(subs)))
    user = (
        encode_item(0x51, struct.pack(">I", max_length))
        + encode_item(0x52, implementation_class_uid.encode("ascii"))
        + encode_item(0x55, implementation_version_name.encode("ascii")[:16])
        + b"".join(_role_item(role) for role in roles)
    )
    items.append(encode_item(0x50, user))
    body = (
        struct.pack(">HH", 1, 0)
        + ae_title_field(called_ae)
        + ae_title_field(calling_ae)
        + bytes(32)
        + b"".join(items)
    )
    return HEADER.pack(PduType.A_ASSOCIATE_RQ, 0, len(body)) + body


def decode_associate_ac(body: bytes) -> AssociateAccept:
    """Parse the body of an A-ASSOCIATE-AC (PS3.8 9.3.3, Tables 9-17 to 9-19). Unknown
    User Information sub-items are skipped (PS3.7 D.3.3: an answer to negotiation we did not
    propose is ignored); a malformed length raises PduError."""
    if len(body) < 68:
        raise PduError("A-ASSOCIATE-AC shorter than its fixed fields")
    accept = AssociateAccept()
    for item_type, value in iter_items(body[68:], "A-ASSOCIATE-AC"):
        if item_type == 0x10:
            accept.application_context = decode_uid(value, "application context name")
        elif item_type == 0x21:
            if len(value) < 4:
                raise PduError("truncated Presentation Context item in A-ASSOCIATE-AC")
            syntax = ""
            for sub_type, sub in iter_items(value[4:], "Presentation Context item"):
                if sub_type == 0x40:
                    syntax = decode_uid(sub, "transfer syntax name")
            accept.results[value[0]] = ContextResult(value[0], value[2], syntax)
        elif item_type == 0x50:
            for sub_type, sub in iter_items(value, "User Information item"):
                if sub_type == 0x51:
                    if len(sub) != 4:
                        raise PduError("Maximum Length sub-item with a length other than 4")
                    accept.max_length = struct.unpack(">I", sub)[0]
                elif sub_type == 0x52:
                    accept.implementation_class_uid = decode_uid(sub, "implementation class")
                elif sub_type == 0x55:
                    accept.implementation_version_name = bytes(sub).decode("ascii", "replace")
                elif sub_type == 0x54:
                    uid, roles = _role_answer(sub)
                    accept.roles[uid] = roles
    return accept


def _role_item(role: RoleSelection) -> bytes:
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4, Table D.3-9)."""
    uid = role.sop_class_uid.encode("ascii")
    return encode_item(
        0x54, struct.pack(">H", len(uid)) + uid + bytes((role.scu_role, role.scp_role))
    )


def _role_answer(sub: memoryview) -> tuple[str, tuple[bool, bool]]:
    """The acceptor's SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4, Table D.3-10)."""
    if len(sub) < 2:
        raise PduError("truncated SCP/SCU Role Selection sub-item")
    (length,) = struct.unpack_from(">H", sub)
    if len(sub) != length + 4:
        raise PduError("SCP/SCU Role Selection sub-item with an inconsistent UID length")
    uid = decode_uid(sub[2 : 2 + length], "role selection SOP class")
    return uid, (bool(sub[2 + length]), bool(sub[3 + length]))


_REJECT_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
#: PS3.8 Table 9-21, by (source, reason/diag).
_REJECT_REASONS = {
    (1, 1): "service-user: no-reason-given",
    (1, 2): "service-user: application-context-name-not-supported",
    (1, 3): "service-user: calling-AE-title-not-recognized",
    (1, 7): "service-user: called-AE-title-not-recognized",
    (2, 1): "service-provider (ACSE): no-reason-given",
    (2, 2): "service-provider (ACSE): protocol-version-not-supported",
    (3, 1): "service-provider (presentation): temporary-congestion",
    (3, 2): "service-provider (presentation): local-limit-exceeded",
}
#: PS3.8 Table 9-26: the reason is significant only when the source is the service provider.
_ABORT_REASONS = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    4: "unrecognized-PDU-parameter",
    5: "unexpected-PDU-parameter",
    6: "invalid-PDU-parameter-value",
}


def describe_reject(body: bytes) -> str:
    """The Result, Source and Reason/Diag of an A-ASSOCIATE-RJ body (PS3.8 9.3.4), in words."""
    result, source, reason = body[1], body[2], body[3]
    said = _REJECT_RESULTS.get(result, f"result {result}")
    why = _REJECT_REASONS.get((source, reason), f"source {source}, reason {reason}")
    return f"{said}, {why}"


def describe_abort(body: bytes) -> str:
    """The Source and Reason/Diag of an A-ABORT body (PS3.8 9.3.8, Table 9-26), in words."""
    source, reason = body[2], body[3]
    if source == 0:
        return "by the service user (the peer application)"
    what = _ABORT_REASONS.get(reason, f"reason {reason}")
    return f"by the service provider ({what})"
