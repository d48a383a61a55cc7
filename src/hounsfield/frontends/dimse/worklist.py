"""Modality Worklist C-FIND SCP (PS3.4 K.4.1.3): translate only.

Pending (FF00) responses, one per matching scheduled procedure step item, a C-CANCEL-RQ
honoured between two of them (FE00), then Success. A900 with Error Comment and Offending
Element for an invalid identifier; C000 when it cannot be decoded (PS3.4 K.4.1.1.4).
"""

from __future__ import annotations

import asyncio
import logging

from hounsfield.domain.cfind import decode_identifier
from hounsfield.domain.mwl import WORKLIST_FIND, parse_worklist
from hounsfield.domain.qrmodel import (
    CANCEL,
    PENDING,
    SUCCESS,
    UNABLE_TO_PROCESS,
    QueryRetrieveError,
)
from hounsfield.frontends.dimse.api import (
    Association,
    AssociationAbortedError,
    CommandField,
    HandlerRegistry,
    Message,
)
from hounsfield.frontends.dimse.qr import error_extra

log = logging.getLogger(__name__)


def register_worklist(registry: HandlerRegistry) -> None:
    registry.register_handler(CommandField.C_FIND_RQ, [WORKLIST_FIND], handle_worklist_find)


async def handle_worklist_find(assoc: Association, message: Message) -> None:
    worklist = assoc.services.worklist
    try:
        if worklist is None:
            raise QueryRetrieveError(UNABLE_TO_PROCESS, "worklist not configured")
        identifier = decode_identifier(message.dataset or b"", message.transfer_syntax)
        request = parse_worklist(identifier)
        found = await asyncio.to_thread(lambda: list(worklist.find(request, assoc.partition)))
    except QueryRetrieveError as exc:
        await assoc.send_response(message, exc.status, command_extra=error_extra(exc))
        return
    except Exception:
        log.exception("worklist query failed")
        await assoc.send_response(
            message, UNABLE_TO_PROCESS, command_extra={"ErrorComment": "worklist query failed"}
        )
        return
    try:
        for response in found:
            if assoc.is_cancelled(message.message_id):
                await assoc.send_response(message, CANCEL)
                return
            await assoc.send_response(message, PENDING, dataset=response)
        await assoc.send_response(message, SUCCESS)
    except AssociationAbortedError:
        return
