"""Query/Retrieve SCP handlers: C-FIND, C-MOVE and C-GET on Patient Root and Study Root.

Each handler only translates (DESIGN.md §7): decode the identifier (`domain.cfind`,
`domain.cretrieve`), call `services.qr` / `services.dicom_send`, map the outcome to statuses.

- C-FIND (PS3.4 C.4.1.3): one Pending (FF00) response per match, streamed as the index pages
  arrive; a C-CANCEL-RQ is honoured between two responses with Cancel (FE00); then Success.
  Relational queries, combined date-time matching and fuzzy person names apply when the
  association granted them (SOP Class Extended Negotiation, `extended.py`).
- C-MOVE (PS3.4 C.4.2.3): the Move Destination must be in the remote AE registry of the
  caller's partition, else A801. Sub-operations are C-STORE-RQs on a new association to the
  destination (the Storage SCU service), one Pending response with the counts after each.
- C-GET (PS3.4 C.4.3.3): the same sub-operations, sent on the requesting association in the
  Storage SCP role the requestor granted (PS3.7 D.3.3.4). A requestor that releases
  (A-RELEASE-RQ) during the sub-operations gets, at once, the final response with the
  unfinished ones counted as failed (A702 when none completed, else B000), then A-RELEASE-RP.

Final statuses follow `qrmodel.final_status`; Warning, Failure and Cancel carry the Failed
SOP Instance UID List (0008,0058) of the sub-operations that failed (C.4.2.1.4.2).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

from hounsfield.domain.cfind import decode_identifier, parse_find
from hounsfield.domain.cretrieve import RetrieveRequest, parse_retrieve
from hounsfield.domain.model import DicomJson
from hounsfield.domain.qrmodel import (
    CANCEL,
    FAILED_SOP_INSTANCE_UID_LIST,
    MOVE_DESTINATION_UNKNOWN,
    PENDING,
    SUCCESS,
    UNABLE_TO_CALCULATE_MATCHES,
    UNABLE_TO_PROCESS,
    Model,
    QueryRetrieveError,
    SubOperations,
    final_status,
)
from hounsfield.frontends.dimse.api import (
    Association,
    AssociationAbortedError,
    CommandField,
    CommandValue,
    HandlerRegistry,
    Message,
    NoPresentationContextError,
    PeerReleasedError,
)
from hounsfield.frontends.dimse.extended import FindOptions
from hounsfield.ports.index import StoredInstance
from hounsfield.services.dicom_send import SendOutcome, SendResult, outcome_of
from hounsfield.services.qr import ObjectReader

log = logging.getLogger(__name__)

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_OTHER_LE = {IMPLICIT_LE: EXPLICIT_LE, EXPLICIT_LE: IMPLICIT_LE}
#: C-FIND results fetched from the index per worker-thread hop.
_FIND_BATCH = 50
_CHUNK = 1 << 20
_T = TypeVar("_T")


def register_query_retrieve(registry: HandlerRegistry) -> None:
    """Register C-FIND, C-MOVE and C-GET on both Query/Retrieve models (PS3.4 C.6.1, C.6.2)."""
    for model in Model:
        registry.register_handler(CommandField.C_FIND_RQ, [model.sop_class("find")], handle_find)
        registry.register_handler(CommandField.C_MOVE_RQ, [model.sop_class("move")], handle_move)
        registry.register_handler(CommandField.C_GET_RQ, [model.sop_class("get")], handle_get)


def _model(message: Message) -> Model:
    found = Model.for_sop_class(message.affected_sop_class_uid)
    if found is None:  # the registry routes only Q/R SOP classes here
        raise QueryRetrieveError(UNABLE_TO_PROCESS, "not a Query/Retrieve SOP class")
    return found[0]


def error_extra(error: QueryRetrieveError) -> dict[str, CommandValue]:
    """Error Comment (0000,0902) and Offending Element (0000,0901), PS3.7 C.4.1.1."""
    extra: dict[str, CommandValue] = {"ErrorComment": error.comment}
    if error.offending:
        extra["OffendingElement"] = tuple(int(tag, 16) for tag in error.offending)
    return extra


def _take(results: Iterator[_T], count: int) -> list[_T]:
    batch: list[_T] = []
    for item in results:
        batch.append(item)
        if len(batch) >= count:
            break
    return batch


async def handle_find(assoc: Association, message: Message) -> None:
    """C-FIND SCP (PS3.4 C.4.1.3): pending responses streamed, C-CANCEL honoured."""
    qr = assoc.services.qr
    try:
        if qr is None:
            raise QueryRetrieveError(UNABLE_TO_PROCESS, "query service not configured")
        identifier = decode_identifier(message.dataset or b"", message.transfer_syntax)
        options = FindOptions.from_answer(assoc.extended.get(message.context.abstract_syntax))
        request = parse_find(
            identifier,
            _model(message),
            partition=assoc.partition,
            relational=options.relational,
            fuzzy=options.fuzzy,
            combined_datetime=options.combined_datetime,
        )
    except QueryRetrieveError as exc:
        await assoc.send_response(message, exc.status, command_extra=error_extra(exc))
        return
    results = qr.find(request)
    try:
        while True:
            batch = await asyncio.to_thread(_take, results, _FIND_BATCH)
            for found in batch:
                if assoc.is_cancelled(message.message_id):
                    await assoc.send_response(message, CANCEL)
                    return
                await assoc.send_response(message, PENDING, dataset=found)
            if len(batch) < _FIND_BATCH:
                break
    except AssociationAbortedError:
        return
    except Exception:
        log.exception("C-FIND failed")
        await assoc.send_response(
            message, UNABLE_TO_PROCESS, command_extra={"ErrorComment": "query failed"}
        )
        return
    if assoc.is_cancelled(message.message_id):
        await assoc.send_response(message, CANCEL)
        return
    await assoc.send_response(message, SUCCESS)


class _Progress:
    """Counts of one C-MOVE/C-GET and its Failed SOP Instance UID List."""

    def __init__(self, total: int) -> None:
        self.ops = SubOperations(remaining=total)
        self.failed_uids: list[str] = []

    def add(self, result: SendResult) -> None:
        ops = self.ops
        completed, failed, warning = ops.completed, ops.failed, ops.warning
        if result.outcome is SendOutcome.COMPLETED:
            completed += 1
        elif result.outcome is SendOutcome.WARNING:
            warning += 1
        else:
            failed += 1
            self.failed_uids.append(result.sop_instance_uid)
        self.ops = SubOperations(ops.remaining - 1, completed, failed, warning)

    async def final(self, assoc: Association, message: Message) -> None:
        cancelled = assoc.is_cancelled(message.message_id)
        status = final_status(self.ops, cancelled=cancelled)
        identifier: DicomJson | None = None
        if status != SUCCESS and self.failed_uids:
            identifier = {FAILED_SOP_INSTANCE_UID_LIST: {"vr": "UI", "Value": self.failed_uids}}
        await assoc.send_response(
            message,
            status,
            command_extra=self.ops.command(final=status != CANCEL),
            dataset=identifier,
        )


async def _plan(
    assoc: Association, message: Message
) -> tuple[RetrieveRequest, list[StoredInstance]] | None:
    """Decode and plan a retrieve; answers the request itself (and returns None) on failure."""
    qr = assoc.services.qr
    try:
        if qr is None:
            raise QueryRetrieveError(UNABLE_TO_PROCESS, "retrieve service not configured")
        identifier = decode_identifier(message.dataset or b"", message.transfer_syntax)
        request = parse_retrieve(identifier, _model(message))
    except QueryRetrieveError as exc:
        await assoc.send_response(message, exc.status, command_extra=error_extra(exc))
        return None
    try:
        instances = await asyncio.to_thread(qr.plan, request, assoc.partition)
    except Exception:
        log.exception("retrieve planning failed")
        await assoc.send_response(
            message,
            UNABLE_TO_CALCULATE_MATCHES,
            command_extra={"ErrorComment": "unable to calculate the matches"},
        )
        return None
    return request, instances


async def handle_move(assoc: Association, message: Message) -> None:
    """C-MOVE SCP (PS3.4 C.4.2.3): sub-operations on a new association to the destination."""
    services = assoc.services
    qr, sender = services.qr, services.dicom_send
    if qr is None or sender is None:
        await assoc.send_response(message, UNABLE_TO_PROCESS)
        return
    destination = await asyncio.to_thread(qr.destination, message.move_destination, assoc.partition)
    if destination is None:
        comment = f"unknown move destination {message.move_destination!r}"[:64]
        await assoc.send_response(
            message, MOVE_DESTINATION_UNKNOWN, command_extra={"ErrorComment": comment}
        )
        return
    planned = await _plan(assoc, message)
    if planned is None:
        return
    instances = planned[1]
    progress = _Progress(len(instances))
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[SendResult] = asyncio.Queue()

    def on_result(result: SendResult) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, result)

    requester_gone = threading.Event()

    def cancelled() -> bool:
        # C-CANCEL, or the requesting association ended: no one is left to report to.
        return requester_gone.is_set() or assoc.is_cancelled(message.message_id)

    work = asyncio.ensure_future(
        asyncio.to_thread(
            sender.send_instances,
            destination,
            instances,
            on_result=on_result,
            cancelled=cancelled,
            move_originator=(assoc.calling_ae, message.message_id),
        )
    )
    try:
        await _relay(assoc, message, progress, queue, work)
        await progress.final(assoc, message)
    except (AssociationAbortedError, asyncio.CancelledError):
        requester_gone.set()
        raise


async def _relay(
    assoc: Association,
    message: Message,
    progress: _Progress,
    queue: asyncio.Queue[SendResult],
    work: asyncio.Future[list[SendResult]],
) -> None:
    """Pending responses with the counts as the sub-operations finish (PS3.4 C.4.2.3.1)."""
    while True:
        getter = asyncio.ensure_future(queue.get())
        waiting: set[asyncio.Future[object]] = {getter, work}  # type: ignore[arg-type]
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            break
        progress.add(getter.result())
        if progress.ops.remaining and not assoc.is_cancelled(message.message_id):
            await assoc.send_response(message, PENDING, command_extra=progress.ops.command())
    try:
        await work
    except Exception:
        log.exception("C-MOVE sub-operations failed")
    while not queue.empty():
        progress.add(queue.get_nowait())


async def _chunks(
    reader: ObjectReader, instance: StoredInstance, offset: int
) -> AsyncIterator[bytes]:
    while offset < instance.size:
        piece = await asyncio.to_thread(reader.chunk, instance, offset, _CHUNK)
        if not piece:
            return
        offset += len(piece)
        yield piece


async def _get_one(
    assoc: Association, reader: ObjectReader, instance: StoredInstance
) -> SendResult:
    """One C-GET sub-operation: the stored syntax if the requestor accepted it in the SCP
    role, else the other uncompressed little endian one, else the object transcoded into an
    accepted syntax (PS3.4 C.4.3.3), else a failure."""
    accepted = [
        syntax
        for syntax in reader.candidates(instance)
        if assoc.find_context(instance.sop_class_uid, [syntax], as_scu=True) is not None
    ]
    stored = instance.transfer_syntax_uid
    syntax = await asyncio.to_thread(reader.choose, instance, accepted)
    if syntax is None:
        return SendResult(instance.sop_uid, SendOutcome.FAILED, reason=f"no context for {stored}")
    data: bytes | AsyncIterator[bytes]
    if syntax == stored:
        try:
            # Before the C-STORE-RQ goes out: a missing object fails this sub-operation alone.
            offset = await asyncio.to_thread(reader.offset, instance)
        except (OSError, ValueError) as exc:
            log.error("C-GET: cannot read %s: %s", instance.blob_key, exc)
            return SendResult(instance.sop_uid, SendOutcome.FAILED, reason=str(exc))
        data = _chunks(reader, instance, offset)
    else:
        convert = reader.rewritten if _OTHER_LE.get(stored) == syntax else reader.transcoded
        try:
            data = await asyncio.to_thread(convert, instance, syntax)
        except Exception as exc:  # unreadable or missing object: this sub-operation fails
            log.error("C-GET: cannot convert %s to %s: %s", instance.blob_key, syntax, exc)
            return SendResult(instance.sop_uid, SendOutcome.FAILED, reason=str(exc))
    try:
        result = await assoc.send_c_store_request(
            sop_class_uid=instance.sop_class_uid,
            sop_instance_uid=instance.sop_uid,
            transfer_syntax=syntax,
            dataset=data,
        )
    except NoPresentationContextError as exc:
        return SendResult(instance.sop_uid, SendOutcome.FAILED, reason=str(exc))
    except TimeoutError:
        return SendResult(instance.sop_uid, SendOutcome.FAILED, reason="no C-STORE response")
    return SendResult(instance.sop_uid, outcome_of(result.status), result.status, "", syntax)


async def handle_get(assoc: Association, message: Message) -> None:
    """C-GET SCP (PS3.4 C.4.3.3): C-STORE sub-operations on the requesting association."""
    planned = await _plan(assoc, message)
    if planned is None:
        return
    instances = planned[1]
    reader = ObjectReader(assoc.services.retrieve.blobs, assoc.services.pixels)
    progress = _Progress(len(instances))
    try:
        for position, instance in enumerate(instances):
            if assoc.is_cancelled(message.message_id):
                break
            try:
                result = await _get_one(assoc, reader, instance)
            except PeerReleasedError:
                # The requestor released during the sub-operations: it stores nothing more,
                # so this one and the rest failed; the final response still goes out.
                log.info(
                    "C-GET: the requestor released with %d sub-operations left",
                    len(instances) - position,
                )
                for rest in instances[position:]:
                    progress.add(SendResult(rest.sop_uid, SendOutcome.FAILED, reason="released"))
                break
            progress.add(result)
            if progress.ops.remaining:
                await assoc.send_response(message, PENDING, command_extra=progress.ops.command())
        await progress.final(assoc, message)
    except AssociationAbortedError:
        return
