"""The contract between the DIMSE server core and the DIMSE service handlers.

The server core (PDU framing, the PS3.8 state machine, negotiation, C-ECHO and C-STORE) lives in
the sibling modules; every other DIMSE service (C-FIND, C-MOVE, C-GET, worklist, storage
commitment...) is a *handler* plugged in through a `HandlerRegistry`. A handler only translates
(DESIGN.md §7): it turns the request into a neutral service call and maps the outcome to a status.

- `Message` is one decoded DIMSE message (PS3.7 9.3 / 10.3): its command set keyed by keyword,
  the presentation context it arrived on, and its data set bytes, encoded in the context's
  transfer syntax (PS3.7 6.3.1). For every message except C-STORE-RQ the data set is small and
  fully buffered; C-STORE data sets are streamed to staging by the core and never reach here.
- `Association` is what a handler may do with the association its request arrived on: answer
  (`send_response`), check for C-CANCEL (`is_cancelled`, PS3.7 9.3.2.3 / C.4.2.3), and act as a
  Storage SCU on the same association for C-GET sub-operations (`send_c_store_request`, PS3.7
  C.4.3 and SCP/SCU role selection, PS3.7 D.3.3.4), or send any other request and await its
  response (`send_request`, e.g. N-EVENT-REPORT for storage commitment, PS3.4 J.3.3).
- `HandlerRegistry.register_handler(command_field, sop_class_uids, handler)` is how a service
  announces itself; association negotiation (PS3.8 9.3.2.2) accepts exactly the abstract syntaxes
  that have a handler, plus every storage SOP class for C-STORE.

Handlers run on the event loop: blocking service calls must go through `asyncio.to_thread` so
the loop keeps serving other associations. One request is processed at a time per association
(no asynchronous operations window, PS3.7 D.3.3.3), but the core keeps reading PDUs while a
handler runs, which is how C-CANCEL and the C-STORE-RSP of C-GET sub-operations reach it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pydicom.dataset import Dataset

from hounsfield.domain import commandset

if TYPE_CHECKING:
    from hounsfield.services.container import Services

#: A command element value and a command set keyed by keyword (`domain.commandset`), the
#: form handlers build and read.
CommandValue: TypeAlias = commandset.CommandValue
CommandSet: TypeAlias = commandset.CommandSet

#: An identifier for `send_response`/`send_request`: already-encoded bytes (in the context's
#: transfer syntax), a pydicom Dataset, or a DICOM JSON object (PS3.18 F.2).
Identifier: TypeAlias = bytes | Dataset | Mapping[str, Any]


class CommandField(enum.IntEnum):
    """Command Field (0000,0100) values, PS3.7 Table E.1-1 and E.2-1."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF

    @property
    def is_request(self) -> bool:
        return not self.value & 0x8000

    @property
    def response(self) -> CommandField:
        """The response command for a request (PS3.7 E.1: the high bit set)."""
        return CommandField(self.value | 0x8000)


class Priority(enum.IntEnum):
    """Priority (0000,0700), PS3.7 Table E.1-1."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


class Status(enum.IntEnum):
    """Common Status (0000,0900) values (PS3.7 Annex C). Service-specific codes (A700, A900,
    C000, A801...) are plain ints; PS3.7 C.1 classifies them by range."""

    SUCCESS = 0x0000
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_WARNING = 0xFF01  # C-FIND: optional keys not supported (PS3.4 C.4.1.1.4)
    WARNING = 0xB000  # sub-operations complete, one or more failures (PS3.4 C.4.2.1.5)
    REFUSED_OUT_OF_RESOURCES = 0xA700
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    MOVE_DESTINATION_UNKNOWN = 0xA801
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212


@dataclass(frozen=True, slots=True)
class PresentationContext:
    """An accepted presentation context (PS3.8 9.3.2.2 / 9.3.3.2): its odd id, abstract syntax,
    the one transfer syntax we chose, and the roles after SCP/SCU role selection (PS3.7 D.3.3.4).

    `scu_role` / `scp_role` are the roles of the *association requestor*: a C-GET SCU proposes
    storage contexts with scp_role=True so that we may send it C-STORE-RQs.
    """

    id: int
    abstract_syntax: str
    transfer_syntax: str
    scu_role: bool = True
    scp_role: bool = False


def _int(value: CommandValue) -> int:
    if isinstance(value, int):
        return value
    raise TypeError(f"expected an integer command value, got {value!r}")


@dataclass(slots=True)
class Message:
    """One DIMSE message (PS3.7 6.3): command set, its context, and the data set, if any."""

    command: CommandSet
    context: PresentationContext
    dataset: bytes | None = None

    @property
    def command_field(self) -> CommandField:
        return CommandField(_int(self.command["CommandField"]))

    @property
    def message_id(self) -> int:
        """Message ID of a request, or Message ID Being Responded To of a response."""
        value = self.command.get("MessageID", self.command.get("MessageIDBeingRespondedTo", 0))
        return _int(value)

    @property
    def affected_sop_class_uid(self) -> str:
        return str(
            self.command.get("AffectedSOPClassUID", self.command.get("RequestedSOPClassUID", ""))
        )

    @property
    def affected_sop_instance_uid(self) -> str:
        return str(
            self.command.get(
                "AffectedSOPInstanceUID", self.command.get("RequestedSOPInstanceUID", "")
            )
        )

    @property
    def priority(self) -> Priority:
        return Priority(_int(self.command.get("Priority", 0)))

    @property
    def move_destination(self) -> str:
        return str(self.command.get("MoveDestination", "")).strip()

    @property
    def status(self) -> int:
        return _int(self.command.get("Status", 0))

    @property
    def transfer_syntax(self) -> str:
        return self.context.transfer_syntax


@dataclass(frozen=True, slots=True)
class SubOperationResult:
    """The peer's answer to a C-STORE-RQ we sent (PS3.4 C.4.3.3 counts it): its Status and the
    whole response command set (ErrorComment, OffendingElement...)."""

    status: int
    command: CommandSet = field(default_factory=dict)


class NoPresentationContextError(LookupError):
    """No accepted presentation context can carry the sub-operation (SOP class / transfer
    syntax not negotiated, or the requestor did not take the SCP role): PS3.4 C.4.3.3 counts it
    as a failed sub-operation."""


class AssociationAbortedError(ConnectionError):
    """The association was aborted or released while a handler was using it."""


class PeerReleasedError(AssociationAbortedError):
    """The peer asked to release the association (A-RELEASE-RQ) while we waited for the
    response to one of our requests, or before we sent one: it will answer no request of ours
    any more. Our own responses may still be sent until the A-RELEASE-RP (PS3.8 Sta8, AR-7),
    so a C-GET counts its sub-operations as failed and sends its final response (PS3.4
    C.4.3.3.1)."""


#: The data set of a C-STORE sub-operation: all bytes, or chunks (sync or async) so a large
#: object is streamed from the blob store, never held whole in memory.
DataSource: TypeAlias = bytes | Iterable[bytes] | AsyncIterable[bytes]


class Association(Protocol):
    """What a handler may know and do about the association its request arrived on."""

    #: Calling AE Title (the peer) and Called AE Title (us), trailing spaces stripped (PS3.8 9.3.2).
    calling_ae: str
    called_ae: str
    #: The peer's (host, port).
    peer: tuple[str, int]
    #: The partition this association sees: the partition of the calling AE in the remote AE
    #: registry (admin API `/api/remote-aes/{aet}`), else the default partition (DESIGN.md key
    #: idea 6). No handler may look outside it.
    partition: str
    #: Accepted presentation contexts by id.
    contexts: Mapping[int, PresentationContext]
    #: SOP Class Extended Negotiation as answered (PS3.7 D.3.3.5): SOP class UID -> the
    #: Service-class-application-information we granted (`extended.py`); absent when none.
    extended: Mapping[str, bytes]
    #: The services of the archive (the composition root hands them over).
    services: Services

    async def send_response(
        self,
        request: Message,
        status: int,
        *,
        command_extra: Mapping[str, CommandValue] | None = None,
        dataset: Identifier | None = None,
    ) -> None:
        """Send the response to `request` on its presentation context: Command Field, Message ID
        Being Responded To, Affected SOP Class/Instance UID and Status are filled in; extras
        (counts, ErrorComment (0000,0902), OffendingElement...) come from `command_extra`.
        A Dataset or DICOM JSON identifier is encoded in the context's transfer syntax."""
        ...

    def is_cancelled(self, message_id: int) -> bool:
        """True once a C-CANCEL-RQ for `message_id` arrived (PS3.7 9.3.2.3, C.4.2.3): stop
        sending pending responses and answer with Status FE00 (Cancel)."""
        ...

    def find_context(
        self,
        abstract_syntax: str,
        transfer_syntaxes: Iterable[str] | None = None,
        *,
        as_scu: bool = False,
    ) -> PresentationContext | None:
        """An accepted context for `abstract_syntax` (first matching `transfer_syntaxes` in the
        given order of preference, any when None). With as_scu=True only contexts on which we
        may act as SCU (the requestor accepted the SCP role, PS3.7 D.3.3.4) qualify."""
        ...

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
        """Send a C-STORE-RQ on this association (a C-GET sub-operation, PS3.4 C.4.3.3) and wait
        for the peer's C-STORE-RSP. `dataset` is the data set without File Meta Information,
        encoded in `transfer_syntax`. Raises NoPresentationContextError when no context with
        the SCP role for the requestor matches, AssociationAbortedError when the association
        ends first (PeerReleasedError when the peer asked to release it, at once rather than
        after the DIMSE timeout), TimeoutError after the DIMSE timeout."""
        ...

    async def send_request(
        self,
        context_id: int,
        command: CommandSet,
        dataset: Identifier | None = None,
        *,
        wait_response: bool = True,
        timeout: float | None = None,
    ) -> Message | None:
        """Send any request (e.g. N-EVENT-REPORT-RQ, PS3.4 J.3.3) and return its response.
        MessageID is assigned when missing."""
        ...

    def next_message_id(self) -> int: ...


Handler: TypeAlias = Callable[[Association, Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Registration:
    command_field: CommandField
    sop_class_uid: str
    handler: Handler


class HandlerRegistry:
    """Which handler serves which (command, SOP class); negotiation accepts the SOP classes
    that appear here (PS3.8 9.3.2.2: a context is accepted only for a supported abstract
    syntax). Built by the composition root; nothing is registered at import time."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[CommandField, str], Handler] = {}
        self._abstract_syntaxes: set[str] = set()

    def register_handler(
        self, command_field: CommandField | int, sop_class_uids: Iterable[str], handler: Handler
    ) -> None:
        """Register `handler` for requests with this Command Field on these SOP classes.
        A later registration for the same pair replaces the earlier one."""
        command = CommandField(command_field)
        if not command.is_request or command is CommandField.C_CANCEL_RQ:
            raise ValueError(f"{command.name} is not a request that a handler can serve")
        for uid in sop_class_uids:
            self._handlers[(command, uid)] = handler
            self._abstract_syntaxes.add(uid)

    def add_abstract_syntaxes(self, uids: Iterable[str]) -> None:
        """Accept these abstract syntaxes in negotiation even without a request handler (e.g.
        a SOP class on which we only *send* requests)."""
        self._abstract_syntaxes.update(uids)

    def handler_for(self, command_field: CommandField, sop_class_uid: str) -> Handler | None:
        return self._handlers.get((command_field, sop_class_uid))

    def supports(self, abstract_syntax: str) -> bool:
        return abstract_syntax in self._abstract_syntaxes

    @property
    def abstract_syntaxes(self) -> frozenset[str]:
        return frozenset(self._abstract_syntaxes)

    def registrations(self) -> list[Registration]:
        return [Registration(c, uid, h) for (c, uid), h in sorted(self._handlers.items())]
