"""One association, acceptor side: the PS3.8 9.2 state machine over an asyncio stream.

States used by an acceptor (PS3.8 Table 9-10) and how they map here:

- Sta2 (transport open, awaiting A-ASSOCIATE-RQ): ARTIM runs (`acse_timeout`, PS3.8 9.1.5);
  an RQ is answered with AC or RJ (AE-6/AE-7/AE-8); any other PDU is AA-1 (A-ABORT, unexpected
  PDU) and ARTIM expiry is AA-2 (close).
- Sta6 (established): P-DATA-TF is DT-2; A-RELEASE-RQ is AR-2, answered with A-RELEASE-RP
  once the request in progress is answered (AR-4), then Sta13; A-ABORT from the peer is AA-3;
  an A-ASSOCIATE PDU or A-RELEASE-RP here is AA-8 (A-ABORT, unexpected PDU); an unrecognised
  or malformed PDU is AA-8 with reason 1 or 6 (PS3.8 9.3.8); transport loss is AA-4.
- Sta13 (awaiting transport close): ARTIM runs again; PDUs are ignored (AA-6/AA-7).

Timers: in Sta6 the idle timeout applies while no message is in progress, the DIMSE timeout
between PDUs of a partly received message; no timeout runs while we work on a request (the
peer is waiting for us). A watchdog `call_at` handle enforces them without a `wait_for` per read.

The reader task never waits for request processing: requests go to a dispatcher task one at a
time (no asynchronous operations window, PS3.7 D.3.3.3), while the reader keeps receiving
C-CANCEL-RQs and the responses to our own requests (C-GET sub-operations).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from hounsfield.domain.commandset import CommandSetError, decode_command
from hounsfield.domain.implementation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)
from hounsfield.domain.pdu import (
    AbortReason,
    AbortSource,
    PduError,
    PduType,
    RejectReason,
    RejectResult,
    RejectSource,
    decode_associate_rq,
    encode_abort,
    encode_associate_ac,
    encode_reject,
    encode_release_rp,
    iter_pdvs,
)
from hounsfield.frontends.dimse import extended, negotiation
from hounsfield.frontends.dimse.api import (
    AssociationAbortedError,
    CommandField,
    CommandValue,
    Identifier,
    Message,
    PresentationContext,
    Status,
)
from hounsfield.frontends.dimse.auditing import AssociationAudit
from hounsfield.frontends.dimse.operations import OperationsMixin
from hounsfield.frontends.dimse.pdu import read_pdu
from hounsfield.frontends.dimse.sender import MessageSender
from hounsfield.frontends.dimse.store import DiscardingReceiver, StoreReceiver, check_request

if TYPE_CHECKING:
    from hounsfield.frontends.dimse.server import ServerContext

log = logging.getLogger(__name__)


class DimseAssociation(OperationsMixin):
    """Acceptor side of one association; implements `api.Association` for handlers."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server: ServerContext,
        *,
        over_limit: bool = False,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.server = server
        self.services = server.services
        self.over_limit = over_limit
        peername = writer.get_extra_info("peername")
        self.peer: tuple[str, int] = (
            (str(peername[0]), int(peername[1])) if isinstance(peername, tuple) else ("", 0)
        )
        self.calling_ae = ""
        self.called_ae = ""
        self.partition = server.options.default_partition
        self.contexts: Mapping[int, PresentationContext] = {}
        self.extended: Mapping[str, bytes] = {}
        self.established = False
        self.sender = MessageSender(writer, 0)
        self._loop = asyncio.get_running_loop()
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timed_out = False
        self._closing = False
        self._queue: asyncio.Queue[tuple[Message, object | None]] = asyncio.Queue()
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._dispatcher: asyncio.Task[None] | None = None
        # Message assembly (PS3.8 9.3.5.1, PS3.7 6.3.1).
        self._command_buf = bytearray()
        self._command_context = 0
        self._pending: Message | None = None
        self._data_buf: bytearray | None = None
        self._store: StoreReceiver | DiscardingReceiver | None = None
        self._store_refusal: tuple[int, str] | None = None
        self._lane: ThreadPoolExecutor | None = None
        self._init_operations()
        #: Audit messages of this association (frontends/dimse/auditing.py).
        self.audit: AssociationAudit | None = (
            AssociationAudit(
                self.services.audit, lambda: (self.calling_ae, self.peer[0], self.partition)
            )
            if self.services.audit is not None
            else None
        )

    # -- timers ----------------------------------------------------------------------------

    def _set_timeout(self, seconds: float) -> None:
        self._deadline = self._loop.time() + seconds if seconds > 0 else math.inf
        if self._deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        if self._deadline == math.inf:
            return
        if self._loop.time() < self._deadline:
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self._timed_out = True
        if self.established and not self._closing:
            log.info("association from %s timed out; aborting", self.calling_ae or self.peer)
            self._write_abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED)
        self._close()

    def _rearm(self) -> None:
        """Pick the timeout for what we are waiting for (see the module docstring)."""
        options = self.server.options
        if self._closing:
            self._set_timeout(options.acse_timeout)
        elif self._busy:
            self._deadline = math.inf
        elif self._command_buf or self._pending is not None:
            self._set_timeout(options.dimse_timeout)
        else:
            self._set_timeout(options.idle_timeout)

    # -- transport -------------------------------------------------------------------------

    def _write_abort(self, source: AbortSource, reason: AbortReason) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_abort(source, reason))

    def abort_for_shutdown(self) -> None:
        """Server shutdown: A-ABORT (a local decision, source service user) and close; the
        reader then ends on the closed transport and tears down as for any loss."""
        if self.established and not self._closing:
            self._write_abort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED)
        self._close()

    def _close(self) -> None:
        self._closing = True
        if not self.writer.is_closing():
            self.writer.close()

    # -- the state machine -----------------------------------------------------------------

    async def run(self) -> None:
        try:
            self._set_timeout(self.server.options.acse_timeout)  # ARTIM, Sta2
            if await self._associate():
                await self._established()
        except PduError as exc:
            log.info("aborting association from %s: %s", self.calling_ae or self.peer, exc)
            await self._abort(exc.reason)
        except (asyncio.IncompleteReadError, ConnectionError):
            if self.established and not self._closing and not self._timed_out:
                log.info("association from %s lost its connection", self.calling_ae or self.peer)
        except Exception:
            log.exception("association from %s failed", self.calling_ae or self.peer)
            await self._abort(AbortReason.NOT_SPECIFIED)
        finally:
            await self._teardown()

    async def _abort(self, reason: AbortReason) -> None:
        """AA-1/AA-8: stop the work in progress, send A-ABORT, then Sta13 until the peer
        closes or ARTIM expires. Closing at once would reset the connection while the peer
        still sends, and the peer would never read the A-ABORT."""
        await self._stop_work()
        self._write_abort(AbortSource.SERVICE_PROVIDER, reason)
        await self._await_close()

    async def _await_close(self) -> None:
        """Sta13: discard whatever arrives until the peer closes or ARTIM expires."""
        self._closing = True
        self._set_timeout(self.server.options.acse_timeout)
        try:
            while await self.reader.read(65536):
                pass  # AA-6/AA-7: PDUs received now are ignored
        except (ConnectionError, OSError):
            pass

    async def _stop_work(self) -> None:
        if self._store is not None:
            self._store.discard()
            self._store = None
        self._fail_waiters()
        if self._dispatcher is not None and not self._dispatcher.done():
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._dispatcher
        while not self._queue.empty():
            _, job = self._queue.get_nowait()
            if isinstance(job, StoreReceiver):
                job.discard()

    def _store_lane(self) -> ThreadPoolExecutor:
        """The association's store lane (see store.StoreReceiver), created at its first C-STORE."""
        if self._lane is None:
            self._lane = ThreadPoolExecutor(1, thread_name_prefix="dimse-store")
        return self._lane

    async def _teardown(self) -> None:
        await self._stop_work()
        if self.audit is not None:
            self.audit.close()
        if self._lane is not None:
            self._lane.shutdown(wait=False)  # queued discards still run
        if self._timer is not None:
            self._timer.cancel()
        self._close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    async def _associate(self) -> bool:
        """Sta2: the first PDU must be an A-ASSOCIATE-RQ (PS3.8 9.2, AE-6)."""
        options = self.server.options
        pdu = await read_pdu(self.reader, options.max_pdu)
        if pdu.type == PduType.A_ABORT:
            return False  # AA-2
        if pdu.type != PduType.A_ASSOCIATE_RQ:
            raise PduError(
                f"PDU type {pdu.type:#04x} before A-ASSOCIATE-RQ", AbortReason.UNEXPECTED_PDU
            )
        request = decode_associate_rq(pdu.body)
        self.calling_ae, self.called_ae = request.calling_ae, request.called_ae
        rejection = negotiation.check_request(request, self.server.policy)
        if rejection is None and self.over_limit:
            rejection = negotiation.Rejection(
                RejectResult.TRANSIENT,
                RejectSource.PRESENTATION_PROVIDER,
                RejectReason.LOCAL_LIMIT_EXCEEDED,
                f"{options.max_associations} associations already open",
            )
        if rejection is not None:
            log.info(
                "rejecting association %s -> %s from %s: %s",
                request.calling_ae,
                request.called_ae,
                self.peer[0],
                rejection.message,
            )
            self.writer.write(encode_reject(rejection.result, rejection.source, rejection.reason))
            await self.writer.drain()
            await self._await_close()  # AE-8: Sta13 until the requestor closes
            return False
        acceptance = negotiation.negotiate_contexts(request, self.server.registry.supports)
        self.partition = await self.server.partition_of(request.calling_ae)
        self.contexts = acceptance.contexts
        self.extended = extended.negotiate(
            request.extended,
            {ctx.abstract_syntax for ctx in acceptance.contexts.values()},
            negotiation.storage_sop_classes(),
        )
        self.sender = MessageSender(self.writer, request.max_length)
        self.writer.write(
            encode_associate_ac(
                request,
                acceptance.results,
                max_length=options.max_pdu,
                implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                implementation_version_name=IMPLEMENTATION_VERSION_NAME,
                roles=acceptance.roles,
                extended=self.extended,
            )
        )
        await self.writer.drain()
        self.established = True
        log.debug(
            "association %s -> %s from %s accepted with %d of %d contexts",
            self.calling_ae,
            self.called_ae,
            self.peer[0],
            len(self.contexts),
            len(request.contexts),
        )
        return True

    async def _established(self) -> None:
        """Sta6 until release, abort or loss of the transport."""
        options = self.server.options
        self._dispatcher = asyncio.create_task(self._dispatch())
        self._rearm()
        while True:
            pdu = await read_pdu(self.reader, options.max_pdu)
            if pdu.type == PduType.P_DATA_TF:
                self._on_pdata(pdu.body)
                if isinstance(self._store, StoreReceiver) and self._store.backlog:
                    await self._store.drain()
            elif pdu.type == PduType.A_RELEASE_RQ:
                await self._release()
                return
            elif pdu.type == PduType.A_ABORT:
                self._closing = True  # AA-3: the peer aborted; nothing to answer
                return
            else:
                raise PduError(
                    f"unexpected PDU type {pdu.type:#04x} on an established association",
                    AbortReason.UNEXPECTED_PDU,
                )
            self._rearm()

    async def _release(self) -> None:
        """AR-2/AR-4: answer the request in progress first, then A-RELEASE-RP, then Sta13.

        A request of ours still waiting for the peer's response (a C-GET sub-operation, an
        N-EVENT-REPORT) fails at once: a requestor that released answers nothing more."""
        if self._store is not None or self._command_buf or self._pending is not None:
            raise PduError("A-RELEASE-RQ in the middle of a message", AbortReason.UNEXPECTED_PDU)
        self._busy = True
        self._deadline = math.inf
        self._peer_released()
        while not (self._queue.empty() and self._idle.is_set()):
            await self._idle.wait()
            await asyncio.sleep(0)
        self.writer.write(encode_release_rp())
        await self.writer.drain()
        self._busy = False
        await self._await_close()  # AR-4: Sta13 until the requestor closes

    # -- message assembly ------------------------------------------------------------------

    def _on_pdata(self, body: bytes) -> None:
        for context_id, control, fragment in iter_pdvs(body):
            context = self.contexts.get(context_id)
            if context is None:
                raise PduError(f"PDV on presentation context {context_id}, which was not accepted")
            if control & 0x01:
                self._on_command_fragment(context, control, fragment)
            else:
                self._on_data_fragment(context, control, fragment)

    def _on_command_fragment(
        self, context: PresentationContext, control: int, fragment: memoryview
    ) -> None:
        if self._pending is not None:
            raise PduError(
                "command fragment while a data set was expected", AbortReason.UNEXPECTED_PDU
            )
        if self._command_buf and context.id != self._command_context:
            raise PduError("command fragments on different presentation contexts")
        self._command_context = context.id
        self._command_buf += fragment
        if len(self._command_buf) > 65536:
            raise PduError("command set larger than 64 KiB")
        if not control & 0x02:
            return
        try:
            command, has_dataset = decode_command(self._command_buf)
            message = Message(command, context)
            command_field = message.command_field
        except (CommandSetError, ValueError) as exc:
            raise PduError(f"invalid command set: {exc}") from exc
        self._command_buf = bytearray()
        if command_field.is_request and command_field is not CommandField.C_CANCEL_RQ:
            self._new_request(message)
        if not has_dataset:
            self._on_message(message)
            return
        self._pending = message
        if command_field is CommandField.C_STORE_RQ:
            refusal = check_request(message, negotiation.storage_sop_classes())
            if refusal is not None:
                self._store = DiscardingReceiver()
                self._store_refusal = (refusal.status, refusal.comment)
            else:
                self._store = StoreReceiver(
                    self.services.staging, message, self.calling_ae, self._store_lane()
                )
        else:
            self._data_buf = bytearray()

    def _on_data_fragment(
        self, context: PresentationContext, control: int, fragment: memoryview
    ) -> None:
        message = self._pending
        if message is None:
            raise PduError("data set fragment without a command", AbortReason.UNEXPECTED_PDU)
        if context.id != message.context.id:
            raise PduError("data set on another presentation context than its command")
        if self._store is not None:
            self._store.write(fragment)
        else:
            assert self._data_buf is not None
            self._data_buf += fragment
            if len(self._data_buf) > self.server.options.max_identifier_bytes:
                raise PduError("identifier larger than the configured maximum")
        if not control & 0x02:
            return
        self._pending = None
        if self._store is not None:
            store, self._store = self._store, None
            if isinstance(store, StoreReceiver):
                self._enqueue(message, store)
            else:
                self._enqueue(message, self._store_refusal)
            return
        assert self._data_buf is not None
        message.dataset = bytes(self._data_buf)
        self._data_buf = None
        self._on_message(message)

    def _on_message(self, message: Message) -> None:
        """Route a complete message: responses to their waiters, C-CANCEL to the flag set,
        requests to the dispatcher."""
        command_field = message.command_field
        if command_field is CommandField.C_CANCEL_RQ:
            self.cancelled.add(message.message_id)
            return
        if not command_field.is_request:
            self._on_response(message)
            return
        self._enqueue(message, None)

    def _new_request(self, message: Message) -> None:
        """A request reuses nothing of an earlier one with the same Message ID (PS3.7 9.3.1:
        IDs are unique only among outstanding operations; pynetdicom sends 1 every time)."""
        self.cancelled.discard(message.message_id)
        self.answered.discard(message.message_id)

    def _enqueue(self, message: Message, job: object | None) -> None:
        self._idle.clear()
        self._busy = True
        self._queue.put_nowait((message, job))

    # -- request processing ----------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._aborted:  # a handler may have swallowed the cancellation of _stop_work
            message, job = await self._queue.get()
            try:
                await self._process(message, job)
            except AssociationAbortedError:
                return
            except (ConnectionError, OSError):
                return
            except Exception:
                log.exception("handler for %s failed", message.command_field.name)
                if message.message_id not in self.answered:
                    await self._safe_failure(message)
            finally:
                if self._queue.empty():
                    self._busy = False
                    self._idle.set()
                    if self.established and not self._closing:
                        self._rearm()

    async def _safe_failure(self, message: Message) -> None:
        with contextlib.suppress(ConnectionError, OSError, AssociationAbortedError):
            await self.send_response(
                message,
                Status.PROCESSING_FAILURE,
                command_extra={"ErrorComment": "internal error while processing the request"},
            )

    async def _process(self, message: Message, job: object | None) -> None:
        if message.command_field is CommandField.C_STORE_RQ:
            await self.server.store(self, message, job)
            self.final_status.pop(message.message_id, None)
            return
        sop_class = message.affected_sop_class_uid or message.context.abstract_syntax
        handler = self.server.registry.handler_for(message.command_field, sop_class)
        if handler is None:
            status = (
                Status.UNRECOGNIZED_OPERATION
                if self.server.registry.supports(sop_class)
                else Status.SOP_CLASS_NOT_SUPPORTED
            )
            await self.send_response(
                message,
                status,
                command_extra={"ErrorComment": f"{message.command_field.name} not supported"},
            )
            self.final_status.pop(message.message_id, None)
            return
        try:
            await handler(self, message)
        finally:
            if self.audit is not None:
                final = self.final_status.pop(message.message_id, None)
                self.audit.request_done(
                    message, int(Status.PROCESSING_FAILURE) if final is None else final
                )

    async def send_response(
        self,
        request: Message,
        status: int,
        *,
        command_extra: Mapping[str, CommandValue] | None = None,
        dataset: Identifier | None = None,
    ) -> None:
        await self._send_response(request, status, command_extra, dataset)
