"""Modality Performed Procedure Step SCP (PS3.4 F.7.2): N-CREATE and N-SET, translated.

N-CREATE records the step (the SOP Instance UID is the SCU's, or one we assign and return,
PS3.7 10.1.5.1.4); N-SET updates it while it is in progress. Refusals carry the status, an
Error Comment and, for a step that may no longer be updated, Error ID A710 (F.7.2.2.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pydicom.uid import generate_uid

from hounsfield.domain.cfind import decode_identifier
from hounsfield.domain.model import DicomJson
from hounsfield.domain.mpps import MPPS_SOP_CLASS, PROCESSING_FAILURE, MppsError
from hounsfield.domain.qrmodel import QueryRetrieveError
from hounsfield.frontends.dimse.api import (
    Association,
    CommandField,
    CommandValue,
    HandlerRegistry,
    Message,
)
from hounsfield.services.mpps import MppsService


def register_mpps(registry: HandlerRegistry) -> None:
    registry.register_handler(CommandField.N_CREATE_RQ, [MPPS_SOP_CLASS], handle_n_create)
    registry.register_handler(CommandField.N_SET_RQ, [MPPS_SOP_CLASS], handle_n_set)


def _extra(error: MppsError) -> dict[str, CommandValue]:
    extra: dict[str, CommandValue] = {"ErrorComment": error.comment}
    if error.error_id is not None:
        extra["ErrorID"] = error.error_id
    return extra


async def handle_n_create(assoc: Association, message: Message) -> None:
    sop_uid = message.affected_sop_instance_uid or generate_uid()
    if await _perform(
        assoc, message, lambda mpps, dataset: mpps.create(assoc.partition, sop_uid, dataset)
    ):
        await assoc.send_response(
            message, 0x0000, command_extra={"AffectedSOPInstanceUID": sop_uid}
        )


async def handle_n_set(assoc: Association, message: Message) -> None:
    sop_uid = message.affected_sop_instance_uid
    if await _perform(
        assoc, message, lambda mpps, dataset: mpps.update(assoc.partition, sop_uid, dataset)
    ):
        await assoc.send_response(message, 0x0000)


async def _perform(
    assoc: Association, message: Message, operation: Callable[[MppsService, DicomJson], object]
) -> bool:
    """Decode the request's data set and run `operation` on it off the event loop; False once
    a refusal is answered: Processing Failure without an MPPS service or for a data set that
    does not decode, else the step's status with its Error Comment and Error ID (F.7.2.2.2)."""
    mpps = assoc.services.mpps
    if mpps is None:
        await assoc.send_response(message, PROCESSING_FAILURE)
        return False
    try:
        dataset = decode_identifier(message.dataset or b"", message.transfer_syntax)
        await asyncio.to_thread(operation, mpps, dataset)
    except QueryRetrieveError as exc:
        await assoc.send_response(
            message, PROCESSING_FAILURE, command_extra={"ErrorComment": exc.comment}
        )
        return False
    except MppsError as exc:
        await assoc.send_response(message, exc.status, command_extra=_extra(exc))
        return False
    return True
