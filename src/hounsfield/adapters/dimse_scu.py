"""Verification, Query/Retrieve and N-EVENT-REPORT SCU on the blocking-socket association of
`adapters.dimse_association`, one association per call (ADR 0016).

- C-ECHO (PS3.7 9.3.5): one request, one response.
- C-FIND (PS3.7 9.3.2, PS3.4 C.4.1): the identifier goes in the negotiated transfer syntax;
  every response is yielded as it arrives, pending ones (FF00, FF01) with their identifier,
  until the final one. A caller that stops iterating before the final response gets a
  C-CANCEL-RQ sent for it (PS3.7 9.3.2.3), and the responses up to the final one (normally
  FE00, Cancel) are read and dropped before the release, so the peer's last word is heard.
- C-MOVE (PS3.7 9.3.4, PS3.4 C.4.2): the same loop; each response's sub-operation counts
  (Remaining, Completed, Failed, Warning) and, on a final failure or warning, the Failed SOP
  Instance UID List identifier (PS3.4 C.4.2.1.4.2) go to the caller.
- N-EVENT-REPORT (PS3.7 10.3.1) on an association on which we propose the SCP role of the SOP
  class (SCP/SCU Role Selection, PS3.7 D.3.3.4), as a Storage Commitment SCP does when the
  requesting association has ended (PS3.4 J.3.3).

Identifiers are DICOM JSON at the port; pydicom encodes and decodes them
(`domain.dimse_dataset`), in explicit or implicit VR little endian as the peer accepts (both
are proposed, explicit first: it keeps the VR of private and unknown elements).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset

from hounsfield.adapters.dimse_association import (
    ScuAssociation,
    ScuOptions,
    open_association,
)
from hounsfield.domain.commandset import CommandSet
from hounsfield.domain.dimse_dataset import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    EncodingError,
    decode_identifier,
    encode_identifier,
)
from hounsfield.domain.model import DicomJson
from hounsfield.domain.pdu import AbortReason, ProposedContext, RoleSelection
from hounsfield.ports.dicom_network import DicomNetworkError, DimseReply
from hounsfield.ports.index import RemoteAE

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_CANCEL_RQ = 0x0FFF
N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
#: PS3.4 C.4.1.1.4 / C.4.2.1.5: Pending statuses; every other status ends the operation.
PENDING = frozenset({0xFF00, 0xFF01})
#: Priority MEDIUM (PS3.7 9.3.2.1, Table 9.1-2): what every SCU sends.
MEDIUM = 0
#: Explicit VR LE first: the acceptor picks the first it supports (PS3.8 9.3.3.2).
SYNTAXES = [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]
COUNTS = (
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)
#: Responses read after a C-CANCEL-RQ before giving up on a final one and aborting.
_AFTER_CANCEL = 10_000


def _associate(
    remote: RemoteAE,
    sop_class_uid: str,
    *,
    calling_ae: str,
    options: ScuOptions,
    roles: tuple[RoleSelection, ...] = (),
) -> tuple[ScuAssociation, int, str]:
    """One presentation context for `sop_class_uid`; the association, the accepted context
    id and its transfer syntax."""
    association = open_association(
        ScuAssociation,
        remote,
        calling_ae=calling_ae,
        contexts=[ProposedContext(1, sop_class_uid, list(SYNTAXES))],
        options=options,
        roles=roles,
    )
    context_id, syntax = association.context_for(sop_class_uid)
    return association, context_id, syntax


def _status(message_command: CommandSet) -> int:
    status = message_command["Status"]
    assert isinstance(status, int)  # checked by ScuAssociation.response
    return status


def echo(remote: RemoteAE, *, calling_ae: str, options: ScuOptions) -> int:
    """C-ECHO (PS3.7 9.3.5); the Status of the C-ECHO-RSP."""
    association, context_id, _ = _associate(
        remote, VERIFICATION, calling_ae=calling_ae, options=options
    )
    try:
        message_id = association.next_message_id()
        association.send_command(
            context_id,
            {
                "AffectedSOPClassUID": VERIFICATION,
                "CommandField": C_ECHO_RQ,
                "MessageID": message_id,
            },
        )
        status = _status(association.response("C-ECHO-RSP", C_ECHO_RSP, message_id).command)
        association.release()
        return status
    finally:
        association.abort(AbortReason.NOT_SPECIFIED)  # only if still open: an error above


def find(
    remote: RemoteAE,
    *,
    calling_ae: str,
    sop_class_uid: str,
    identifier: DicomJson,
    options: ScuOptions,
) -> Iterator[DimseReply]:
    """C-FIND (PS3.4 C.4.1): every response, pending ones with their identifier."""
    return _query(
        remote,
        calling_ae=calling_ae,
        sop_class_uid=sop_class_uid,
        identifier=identifier,
        options=options,
        request=C_FIND_RQ,
        response=C_FIND_RSP,
        extra={},
    )


def move(
    remote: RemoteAE,
    *,
    calling_ae: str,
    sop_class_uid: str,
    identifier: DicomJson,
    destination: str,
    options: ScuOptions,
) -> Iterator[DimseReply]:
    """C-MOVE (PS3.4 C.4.2) to the AE titled `destination`: every response with its
    sub-operation counts."""
    return _query(
        remote,
        calling_ae=calling_ae,
        sop_class_uid=sop_class_uid,
        identifier=identifier,
        options=options,
        request=C_MOVE_RQ,
        response=C_MOVE_RSP,
        extra={"MoveDestination": destination},
    )


def _query(
    remote: RemoteAE,
    *,
    calling_ae: str,
    sop_class_uid: str,
    identifier: DicomJson,
    options: ScuOptions,
    request: int,
    response: int,
    extra: CommandSet,
) -> Iterator[DimseReply]:
    # The identifier is checked before anything is sent: a malformed one is the caller's
    # error (ValueError), not the network's.
    dataset = _dataset(identifier)
    return _exchange(remote, calling_ae, sop_class_uid, dataset, options, request, response, extra)


def _exchange(
    remote: RemoteAE,
    calling_ae: str,
    sop_class_uid: str,
    dataset: Dataset,
    options: ScuOptions,
    request: int,
    response: int,
    extra: CommandSet,
) -> Iterator[DimseReply]:
    name = "C-FIND" if request == C_FIND_RQ else "C-MOVE"
    association, context_id, syntax = _associate(
        remote, sop_class_uid, calling_ae=calling_ae, options=options
    )
    final = False
    try:
        try:
            data = encode_identifier(dataset, syntax)
        except EncodingError as exc:
            association.release()
            raise ValueError(f"{name} identifier: {exc}") from exc
        message_id = association.next_message_id()
        command: CommandSet = {
            "AffectedSOPClassUID": sop_class_uid,
            "CommandField": request,
            "MessageID": message_id,
            "Priority": MEDIUM,
            **extra,
        }
        association.send_command(context_id, command, data)
        while not final:
            reply = _reply(association, name, response, message_id, syntax)
            final = reply.status not in PENDING
            try:
                yield reply
            except GeneratorExit:
                if not final:
                    _cancel(association, context_id, name, response, message_id)
                with contextlib.suppress(DicomNetworkError):
                    association.release()
                raise
        association.release()
    finally:
        association.abort(AbortReason.NOT_SPECIFIED)  # only if still open: an error above


def _reply(
    association: ScuAssociation, name: str, response: int, message_id: int, syntax: str
) -> DimseReply:
    """One C-FIND-RSP or C-MOVE-RSP as a DimseReply: Status, counts, Error Comment and the
    identifier as DICOM JSON."""
    message = association.response(f"{name}-RSP", response, message_id)
    command = message.command
    found: DicomJson | None = None
    if message.data_set is not None:
        try:
            found = _json(decode_identifier(message.data_set, syntax))
        except EncodingError as exc:
            association.abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(
                f"undecodable identifier in a {name}-RSP from {association.where}: {exc}"
            ) from exc
    counts = {key: value for key in COUNTS if isinstance(value := command.get(key), int)}
    comment = command.get("ErrorComment", "")
    return DimseReply(_status(command), found, counts, str(comment))


def _cancel(
    association: ScuAssociation, context_id: int, name: str, response: int, message_id: int
) -> None:
    """C-CANCEL-RQ for the outstanding request (PS3.7 9.3.2.3, 9.3.4.3), then read its
    responses up to the final one (normally Cancel, FE00) so the release that follows is
    not a collision with the peer's last response. Anything that goes wrong ends the
    association: the caller has stopped listening."""
    with contextlib.suppress(DicomNetworkError):
        association.send_command(
            context_id, {"CommandField": C_CANCEL_RQ, "MessageIDBeingRespondedTo": message_id}
        )
        for _ in range(_AFTER_CANCEL):
            message = association.response(f"{name}-RSP", response, message_id)
            if _status(message.command) not in PENDING:
                log.debug("%s %d cancelled on %s", name, message_id, association.where)
                return
        association.abort(AbortReason.NOT_SPECIFIED)


def event_report(
    remote: RemoteAE,
    *,
    calling_ae: str,
    sop_class_uid: str,
    sop_instance_uid: str,
    event_type: int,
    information: DicomJson,
    options: ScuOptions,
) -> int:
    """N-EVENT-REPORT (PS3.7 10.3.1) on a new association on which we propose only the SCP
    role of `sop_class_uid` (PS3.7 D.3.3.4); the Status. An acceptor that does not grant that
    role leaves us the default SCU role, in which we may not send the report (PS3.7 D.3.3.4:
    the roles are the defaults when the acceptor does not answer the sub-item)."""
    dataset = _dataset(information)
    association, context_id, syntax = _associate(
        remote,
        sop_class_uid,
        calling_ae=calling_ae,
        options=options,
        roles=(RoleSelection(sop_class_uid, scu_role=False, scp_role=True),),
    )
    try:
        if not association.roles.get(sop_class_uid, (True, False))[1]:
            association.release()
            raise DicomNetworkError(
                f"{association.where} did not accept us as SCP of {sop_class_uid}"
            )
        try:
            data = encode_identifier(dataset, syntax)
        except EncodingError as exc:
            association.release()
            raise ValueError(f"N-EVENT-REPORT information: {exc}") from exc
        message_id = association.next_message_id()
        association.send_command(
            context_id,
            {
                "AffectedSOPClassUID": sop_class_uid,
                "CommandField": N_EVENT_REPORT_RQ,
                "MessageID": message_id,
                "AffectedSOPInstanceUID": sop_instance_uid,
                "EventTypeID": event_type,
            },
            data,
        )
        answer = association.response("N-EVENT-REPORT-RSP", N_EVENT_REPORT_RSP, message_id)
        status = _status(answer.command)
        association.release()
        return status
    finally:
        association.abort(AbortReason.NOT_SPECIFIED)  # only if still open: an error above


def _dataset(identifier: DicomJson) -> Dataset:
    try:
        return Dataset.from_json(dict(identifier))
    except Exception as exc:
        raise ValueError(f"not a DICOM JSON data set: {exc}") from exc


def _json(dataset: Dataset) -> DicomJson:
    """DICOM JSON with every value inline: an identifier has no bulk data worth a URI."""
    converted: dict[str, Any] = dataset.to_json_dict(bulk_data_threshold=1 << 30)
    return converted
