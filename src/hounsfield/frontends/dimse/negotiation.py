"""Association negotiation policy (PS3.8 9.3.2-9.3.4, PS3.7 D.3.3): accept, or reject and why.

Pure: given an A-ASSOCIATE-RQ and the policy, decide the A-ASSOCIATE-RJ reason or the result of
every presentation context and role selection. The state machine sends what this decides.

- The application context must be the DICOM one (PS3.7 A.2.1), else RJ permanent, source
  service-user, reason 2; protocol version bit 0 must be set (PS3.8 9.3.2), else source ACSE
  provider, reason 2.
- The called AE title must be ours when `require_called_ae` (reason 7), the calling AE must be
  in the allow list when one is configured (reason 3).
- A context is accepted when its abstract syntax has a handler or is a storage SOP class, with
  the first proposed transfer syntax we support (the requestor lists them in its order of
  preference, PS3.8 9.3.2.2); else result 3 (abstract syntax not supported) or 4 (transfer
  syntaxes not supported). An even or repeated context id is result 2 (no reason): PS3.8
  9.3.2.2 requires odd, unique ids.
- SCP/SCU role selection (PS3.7 D.3.3.4): the requestor may always be SCU; it may also be SCP
  for storage SOP classes, which is what C-GET needs to receive its C-STORE sub-operations.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cache
from typing import Final

from hounsfield.domain.pdu import (
    APPLICATION_CONTEXT,
    AssociateRequest,
    ContextResult,
    ContextResultCode,
    RejectReason,
    RejectResult,
    RejectSource,
    RoleSelection,
)
from hounsfield.frontends.dimse.api import PresentationContext

VERIFICATION: Final = "1.2.840.10008.1.1"
IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"

#: Transfer syntaxes accepted for storage (PS3.5 Annex A, Table A-1): every common encoding of
#: the data set. The bytes are stored as received (DESIGN.md key idea 1), so accepting a
#: compressed syntax needs no codec.
STORAGE_TRANSFER_SYNTAXES: Final = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 Multi-component Lossless
    "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 Multi-component
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K RPCL Lossless
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.100",  # MPEG2 MP@ML
    "1.2.840.10008.1.2.4.100.1",
    "1.2.840.10008.1.2.4.101",  # MPEG2 MP@HL
    "1.2.840.10008.1.2.4.101.1",
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 HP@4.1
    "1.2.840.10008.1.2.4.102.1",
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD-compatible
    "1.2.840.10008.1.2.4.103.1",
    "1.2.840.10008.1.2.4.104",  # MPEG-4 AVC/H.264 HP@4.2 2D
    "1.2.840.10008.1.2.4.104.1",
    "1.2.840.10008.1.2.4.105",  # MPEG-4 AVC/H.264 HP@4.2 3D
    "1.2.840.10008.1.2.4.105.1",
    "1.2.840.10008.1.2.4.106",  # MPEG-4 AVC/H.264 Stereo HP@4.2
    "1.2.840.10008.1.2.4.106.1",
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main@5.1
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 Main 10@5.1
)
#: Non-storage services carry small identifiers; these are the syntaxes we encode them in.
IDENTIFIER_TRANSFER_SYNTAXES: Final = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
)


@cache
def storage_sop_classes() -> frozenset[str]:
    """Every storage SOP class pynetdicom knows (PS3.4 Annex B.5 table as data)."""
    from pynetdicom import sop_class

    return frozenset(str(uid) for uid in sop_class._STORAGE_CLASSES.values())


@dataclass(frozen=True, slots=True)
class Policy:
    ae_title: str
    require_called_ae: bool = True
    allowed_calling_aes: Collection[str] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    result: RejectResult
    source: RejectSource
    reason: int
    message: str


@dataclass(slots=True)
class Acceptance:
    contexts: dict[int, PresentationContext] = field(default_factory=dict)
    results: list[ContextResult] = field(default_factory=list)
    roles: list[RoleSelection] = field(default_factory=list)


def check_request(request: AssociateRequest, policy: Policy) -> Rejection | None:
    """The association-level checks, in the order PS3.8 9.3.4 lists the reasons."""
    if not request.protocol_version & 1:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.ACSE_PROVIDER,
            RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
            f"protocol version {request.protocol_version:#06x} does not have bit 0 set",
        )
    if request.application_context != APPLICATION_CONTEXT:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            RejectReason.APPLICATION_CONTEXT_NOT_SUPPORTED,
            f"application context {request.application_context!r} is not DICOM's",
        )
    if policy.require_called_ae and request.called_ae != policy.ae_title:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            RejectReason.CALLED_AE_NOT_RECOGNIZED,
            f"called AE title {request.called_ae!r} is not {policy.ae_title!r}",
        )
    if policy.allowed_calling_aes and request.calling_ae not in policy.allowed_calling_aes:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            RejectReason.CALLING_AE_NOT_RECOGNIZED,
            f"calling AE title {request.calling_ae!r} is not in the allow list",
        )
    return None


def negotiate_contexts(request: AssociateRequest, supports: Callable[[str], bool]) -> Acceptance:
    """Result of every proposed presentation context and role selection (PS3.8 9.3.3.2)."""
    storage = storage_sop_classes()
    acceptance = Acceptance()
    seen: set[int] = set()
    for proposed in request.contexts:
        uid = proposed.abstract_syntax
        first = proposed.transfer_syntaxes[0] if proposed.transfer_syntaxes else ""
        fallback = first or IMPLICIT_VR_LITTLE_ENDIAN
        if proposed.id % 2 == 0 or proposed.id in seen or not uid:
            acceptance.results.append(
                ContextResult(proposed.id, ContextResultCode.NO_REASON, fallback)
            )
            continue
        seen.add(proposed.id)
        is_storage = uid in storage
        if not (is_storage or supports(uid)):
            acceptance.results.append(
                ContextResult(
                    proposed.id, ContextResultCode.ABSTRACT_SYNTAX_NOT_SUPPORTED, fallback
                )
            )
            continue
        allowed = STORAGE_TRANSFER_SYNTAXES if is_storage else IDENTIFIER_TRANSFER_SYNTAXES
        chosen = next((ts for ts in proposed.transfer_syntaxes if ts in allowed), None)
        if chosen is None:
            acceptance.results.append(
                ContextResult(
                    proposed.id, ContextResultCode.TRANSFER_SYNTAXES_NOT_SUPPORTED, fallback
                )
            )
            continue
        scu_role, scp_role = True, False
        role = request.roles.get(uid)
        if role is not None:
            # PS3.7 D.3.3.4: the acceptor answers each proposed role with 1 (accepted) or 0.
            scu_role = role.scu_role
            scp_role = role.scp_role and is_storage
        acceptance.results.append(ContextResult(proposed.id, ContextResultCode.ACCEPTANCE, chosen))
        acceptance.contexts[proposed.id] = PresentationContext(
            proposed.id, uid, chosen, scu_role=scu_role, scp_role=scp_role
        )
    accepted_uids = {ctx.abstract_syntax for ctx in acceptance.contexts.values()}
    for uid, role in request.roles.items():
        if uid in accepted_uids:
            acceptance.roles.append(
                RoleSelection(uid, role.scu_role, role.scp_role and uid in storage)
            )
    return acceptance
