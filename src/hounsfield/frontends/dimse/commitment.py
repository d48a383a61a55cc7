"""Storage Commitment Push Model SCP (PS3.4 J.3): N-ACTION in, N-EVENT-REPORT out.

The N-ACTION-RQ is answered at once (Success, or a failure status when the request is not a
Storage Commitment request: 0117 for another SOP Instance, 0123 for another action, 0115
when the Action Information is invalid, PS3.7 10.1.4.1.10). The commitment decision and its
N-EVENT-REPORT-RQ run in a background task that outlives the handler: on the requesting
association while it is open (J.3.3), otherwise on a new association to the calling AE as
registered in the remote AE registry of its partition, proposing the SCP role (PS3.7 D.3.3.4).
"""

from __future__ import annotations

import asyncio
import logging

from hounsfield.domain.cfind import decode_identifier
from hounsfield.domain.commitment import (
    REQUEST_STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
    CommitmentRequest,
    InvalidCommitmentRequestError,
    event_information,
    parse_commitment_request,
)
from hounsfield.domain.qrmodel import QueryRetrieveError
from hounsfield.frontends.dimse.api import (
    Association,
    CommandField,
    CommandSet,
    HandlerRegistry,
    Message,
)

log = logging.getLogger(__name__)

INVALID_SOP_INSTANCE = 0x0117
NO_SUCH_ACTION = 0x0123
INVALID_ARGUMENT_VALUE = 0x0115
PROCESSING_FAILURE = 0x0110
#: How long to wait for the SCU's N-EVENT-REPORT-RSP on the requesting association.
REPORT_TIMEOUT = 30.0

_background: set[asyncio.Task[None]] = set()


def register_commitment(registry: HandlerRegistry) -> None:
    registry.register_handler(
        CommandField.N_ACTION_RQ, [STORAGE_COMMITMENT_PUSH_MODEL], handle_commitment
    )


async def handle_commitment(assoc: Association, message: Message) -> None:
    commitment = assoc.services.commitment
    if commitment is None:
        await assoc.send_response(message, PROCESSING_FAILURE)
        return
    if message.affected_sop_instance_uid != STORAGE_COMMITMENT_INSTANCE:
        await assoc.send_response(message, INVALID_SOP_INSTANCE)
        return
    if message.command.get("ActionTypeID") != REQUEST_STORAGE_COMMITMENT:
        await assoc.send_response(message, NO_SUCH_ACTION)
        return
    try:
        action = decode_identifier(message.dataset or b"", message.transfer_syntax)
        request = parse_commitment_request(action)
    except (QueryRetrieveError, InvalidCommitmentRequestError) as exc:
        await assoc.send_response(
            message, INVALID_ARGUMENT_VALUE, command_extra={"ErrorComment": str(exc)[:64]}
        )
        return
    await assoc.send_response(
        message, 0x0000, command_extra={"ActionTypeID": REQUEST_STORAGE_COMMITMENT}
    )
    task = asyncio.create_task(_report(assoc, message, request))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _report(assoc: Association, message: Message, request: CommitmentRequest) -> None:
    services = assoc.services
    commitment = services.commitment
    assert commitment is not None
    try:
        result = await asyncio.to_thread(commitment.check, request, assoc.partition)
    except Exception:
        log.exception("storage commitment check failed for %s", request.transaction_uid)
        return
    information = event_information(result, assoc.called_ae)
    command: CommandSet = {
        "CommandField": int(CommandField.N_EVENT_REPORT_RQ),
        "AffectedSOPClassUID": STORAGE_COMMITMENT_PUSH_MODEL,
        "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
        "EventTypeID": result.event_type,
    }
    try:
        response = await assoc.send_request(
            message.context.id, command, information, timeout=REPORT_TIMEOUT
        )
        if response is not None:
            return
    except Exception as exc:  # aborted, released, timed out: try a new association
        log.info("N-EVENT-REPORT on the requesting association failed (%s)", exc)
    qr, sender = services.qr, services.dicom_send
    remote = None
    if qr is not None:
        remote = await asyncio.to_thread(qr.destination, assoc.calling_ae, assoc.partition)
    if remote is None or sender is None:
        log.warning(
            "storage commitment %s: %s is not a registered AE; the report is lost",
            request.transaction_uid,
            assoc.calling_ae,
        )
        return
    try:
        await asyncio.to_thread(
            sender.network.event_report,
            remote,
            calling_ae=assoc.called_ae,
            sop_class_uid=STORAGE_COMMITMENT_PUSH_MODEL,
            sop_instance_uid=STORAGE_COMMITMENT_INSTANCE,
            event_type=result.event_type,
            information=information,
        )
    except Exception:
        log.exception(
            "storage commitment %s: report to %s failed", request.transaction_uid, remote.aet
        )
