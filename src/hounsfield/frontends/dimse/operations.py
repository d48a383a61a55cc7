"""DIMSE operations an association performs for handlers: responses, and requests we originate.

Responses (PS3.7 9.3 / 10.3) echo the request's Message ID in Message ID Being Responded To and
travel on the request's presentation context. Requests we send (C-STORE sub-operations of C-GET,
PS3.4 C.4.3.3; N-EVENT-REPORT of storage commitment, PS3.4 J.3.3) get a Message ID from a
per-association counter; their response is routed back by the reader to the waiting future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from hounsfield.domain.commandset import encode_command
from hounsfield.domain.dimse_dataset import encode_identifier
from hounsfield.frontends.dimse.api import (
    AssociationAbortedError,
    CommandField,
    CommandSet,
    CommandValue,
    DataSource,
    Identifier,
    Message,
    NoPresentationContextError,
    PeerReleasedError,
    PresentationContext,
    Priority,
    SubOperationResult,
)

if TYPE_CHECKING:
    from hounsfield.frontends.dimse.sender import MessageSender
    from hounsfield.frontends.dimse.server import ServerContext

#: Statuses that do not end an operation (PS3.7 C.1.2): more responses follow.
_PENDING = (0xFF00, 0xFF01)
#: Responses that carry the Affected SOP Instance UID (PS3.7 9.3.1.2, 10.3).
_WITH_INSTANCE = {
    CommandField.C_STORE_RSP,
    CommandField.N_EVENT_REPORT_RSP,
    CommandField.N_GET_RSP,
    CommandField.N_SET_RSP,
    CommandField.N_ACTION_RSP,
    CommandField.N_CREATE_RSP,
    CommandField.N_DELETE_RSP,
}


class OperationsMixin:
    """Mixed into DimseAssociation; see api.Association for the contract."""

    sender: MessageSender
    server: ServerContext
    contexts: Mapping[int, PresentationContext]
    established: bool

    def _init_operations(self) -> None:
        self.cancelled: set[int] = set()
        self.answered: set[int] = set()
        #: The final (non-pending) status sent for each request, by Message ID (for the audit).
        self.final_status: dict[int, int] = {}
        self._message_id = 0
        self._waiters: dict[int, asyncio.Future[Message]] = {}
        self._aborted = False
        self._released = False

    def is_cancelled(self, message_id: int) -> bool:
        return message_id in self.cancelled

    def next_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def find_context(
        self,
        abstract_syntax: str,
        transfer_syntaxes: Iterable[str] | None = None,
        *,
        as_scu: bool = False,
    ) -> PresentationContext | None:
        """With as_scu, only contexts whose requestor took the SCP role (PS3.7 D.3.3.4)."""
        candidates = [
            ctx
            for ctx in self.contexts.values()
            if ctx.abstract_syntax == abstract_syntax and (ctx.scp_role or not as_scu)
        ]
        if transfer_syntaxes is None:
            return candidates[0] if candidates else None
        for syntax in transfer_syntaxes:
            for ctx in candidates:
                if ctx.transfer_syntax == syntax:
                    return ctx
        return None

    def _check_open(self) -> None:
        if self._aborted or self.sender.writer.is_closing():
            raise AssociationAbortedError("the association is no longer open")

    async def _send_response(
        self,
        request: Message,
        status: int,
        command_extra: Mapping[str, CommandValue] | None,
        dataset: Identifier | None,
    ) -> None:
        self._check_open()
        response = request.command_field.response
        command: CommandSet = {
            "CommandField": int(response),
            "MessageIDBeingRespondedTo": request.message_id,
            "Status": status,
        }
        sop_class = request.affected_sop_class_uid
        if sop_class:
            command["AffectedSOPClassUID"] = sop_class
        if response in _WITH_INSTANCE and request.affected_sop_instance_uid:
            command["AffectedSOPInstanceUID"] = request.affected_sop_instance_uid
        if command_extra:
            command.update(command_extra)
        data: bytes | None = None
        if dataset is not None:
            data = (
                dataset
                if isinstance(dataset, bytes)
                else encode_identifier(dataset, request.context.transfer_syntax)
            )
        if status not in _PENDING:
            self.answered.add(request.message_id)
            self.final_status[request.message_id] = status
        await self.sender.send(request.context.id, encode_command(command, data is not None), data)

    async def send_request(
        self,
        context_id: int,
        command: CommandSet,
        dataset: Identifier | None = None,
        *,
        wait_response: bool = True,
        timeout: float | None = None,
    ) -> Message | None:
        context = self.contexts.get(context_id)
        if context is None:
            raise NoPresentationContextError(f"presentation context {context_id} not accepted")
        data: bytes | None = None
        if dataset is not None:
            data = (
                dataset
                if isinstance(dataset, bytes)
                else encode_identifier(dataset, context.transfer_syntax)
            )
        return await self._request(context, dict(command), data, wait_response, timeout)

    async def send_c_store_request(
        self,
        *,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax: str,
        dataset: DataSource,
        priority: Priority = Priority.MEDIUM,
        move_originator_ae: str | None = None,
        move_originator_message_id: int | None = None,
        timeout: float | None = None,
    ) -> SubOperationResult:
        context = self.find_context(sop_class_uid, [transfer_syntax], as_scu=True)
        if context is None:
            raise NoPresentationContextError(
                f"no presentation context with the SCP role for {sop_class_uid} "
                f"in {transfer_syntax}"
            )
        command: CommandSet = {
            "CommandField": int(CommandField.C_STORE_RQ),
            "AffectedSOPClassUID": sop_class_uid,
            "AffectedSOPInstanceUID": sop_instance_uid,
            "Priority": int(priority),
        }
        if move_originator_ae is not None:
            command["MoveOriginatorApplicationEntityTitle"] = move_originator_ae
        if move_originator_message_id is not None:
            command["MoveOriginatorMessageID"] = move_originator_message_id
        response = await self._request(context, command, dataset, True, timeout)
        assert response is not None
        return SubOperationResult(response.status, response.command)

    async def _request(
        self,
        context: PresentationContext,
        command: CommandSet,
        data: DataSource | None,
        wait_response: bool,
        timeout: float | None,
    ) -> Message | None:
        self._check_open()
        if self._released:
            raise PeerReleasedError("the peer asked to release the association")
        message_id = command.get("MessageID")
        if not isinstance(message_id, int):
            message_id = self.next_message_id()
            command["MessageID"] = message_id
        future: asyncio.Future[Message] | None = None
        if wait_response:
            future = asyncio.get_running_loop().create_future()
            self._waiters[message_id] = future
        try:
            await self.sender.send(context.id, encode_command(command, data is not None), data)
            if future is None:
                return None
            wait = self.server.options.dimse_timeout if timeout is None else timeout
            # Not asyncio.wait_for: on 3.11 it drops a cancellation that arrives together with
            # the future's exception (A-ABORT fails the waiters, then cancels the dispatcher),
            # and the dispatcher would then wait for a next request that never comes.
            async with asyncio.timeout(wait if wait > 0 else None):
                return await future
        finally:
            self._waiters.pop(message_id, None)

    def _on_response(self, message: Message) -> None:
        future = self._waiters.get(message.message_id)
        if future is not None and not future.done():
            future.set_result(message)

    def _fail_waiters(self) -> None:
        """The association ended (A-ABORT, transport loss, shutdown): every waiter fails at once
        and nothing more can be sent."""
        self._aborted = True
        self._wake_waiters(AssociationAbortedError("the association ended"))

    def _peer_released(self) -> None:
        """A-RELEASE-RQ (AR-2): the requestor will answer no request of ours any more, so the
        waiters fail now instead of sitting out the DIMSE timeout; responses may still go out
        until the A-RELEASE-RP (PS3.8 Sta8)."""
        self._released = True
        self._wake_waiters(PeerReleasedError("the peer asked to release the association"))

    def _wake_waiters(self, error: AssociationAbortedError) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()
