"""The requestor side of a DICOM association on a blocking socket (PS3.8 7.1-7.3, 9.2), shared
by every SCU of the archive: Storage (`adapters.dimse_store_scu`), Verification and
Query/Retrieve (`adapters.dimse_scu`).

Why a blocking socket in the caller's thread: the `DicomNetwork` port is synchronous and called
from worker threads, and without an asynchronous operations window an SCU is a strict
request/response loop (PS3.7 D.3.3.3): send a request, read its responses, nothing in between.
pynetdicom's association instead runs a reactor thread that hands responses to the caller
through a queue it may also drain itself; under CPU load it dropped responses ("Received
unexpected ... service message") and the caller waited the whole DIMSE timeout (ADR 0015, 0016).

What this module does:

- connect (TCP_NODELAY, DESIGN.md §4; DICOM TLS, PS3.15 B.1, with the client context of every
  SCU association) and send an A-ASSOCIATE-RQ with our Maximum Length, Implementation Class UID
  and Version Name (PS3.8 9.3.2, PS3.7 D.3.3.2);
- act on the A-ASSOCIATE-AC/RJ: which proposed contexts were accepted, in which syntax
  (PS3.8 9.3.3.2), the peer's Maximum Length for what we send (D.1);
- send a command set and an optional data set as PDVs no longer than the peer allows
  (PS3.8 9.3.5.1), and read one whole message back (command, then its data set);
- end it: A-RELEASE-RQ/RP (7.2, tolerating a release collision, 9.2.2.3), or A-ABORT when the
  peer broke the protocol or took too long (7.3). A-ABORT, an A-RELEASE-RQ from the peer, a
  closed connection, a malformed PDU and timeouts raise `DicomNetworkError` saying which, with
  the PS3.8 Table 9-21 / 9-26 words for rejections and aborts.

Timeouts are the `dimse_*` settings: ACSE for connecting, negotiating and releasing, DIMSE for
each response, the network (idle) timeout for the peer to take what we send.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hounsfield.domain.commandset import (
    CommandSet,
    CommandSetError,
    decode_command,
    encode_command,
)
from hounsfield.domain.implementation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)
from hounsfield.domain.pdu import (
    HEADER,
    MAX_CONTROL_PDU,
    PDV_OVERHEAD,
    AbortReason,
    AbortSource,
    ContextResultCode,
    PduError,
    PduType,
    ProposedContext,
    RoleSelection,
    check_header,
    encode_abort,
    encode_release_rp,
    encode_release_rq,
    iter_pdvs,
)
from hounsfield.domain.pdu_requestor import (
    decode_associate_ac,
    describe_abort,
    describe_reject,
    encode_associate_rq,
)
from hounsfield.ports.dicom_network import DicomNetworkError
from hounsfield.ports.index import RemoteAE

log = logging.getLogger(__name__)

#: Bytes in front of each fragment: the P-DATA-TF header and the PDV item header.
FRAME = HEADER.size + PDV_OVERHEAD
FRAME_HEADERS = struct.Struct(">BBIIBB")
#: Largest PDU we send when the peer sets no limit (Maximum Length 0, PS3.8 D.1.1), so memory
#: per association stays bounded.
BLOCK = 1 << 20
#: Largest data set we take in one response (a C-FIND identifier, a C-MOVE Failed SOP Instance
#: UID List): identifiers are kilobytes; a peer sending more is refused, not buffered.
MAX_RESPONSE_DATA_SET = 16 << 20
COMMAND = 0x01
LAST = 0x02

A = TypeVar("A", bound="ScuAssociation")


@dataclass(frozen=True, slots=True)
class ScuOptions:
    """Timeouts (seconds; 0 = none) and limits of our SCU associations, from the dimse_*
    settings: `acse_timeout` for connecting, negotiating and releasing, `dimse_timeout` for a
    response, `network_timeout` for the peer to take what we send."""

    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    max_pdu: int = 0
    tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context


@dataclass(frozen=True, slots=True)
class Message:
    """One DIMSE message received: its command set and its data set's bytes, if it had one."""

    command: CommandSet
    data_set: bytes | None = None


def seconds(value: float) -> float | None:
    return value if value > 0 else None


def open_association(
    kind: type[A],
    remote: RemoteAE,
    *,
    calling_ae: str,
    contexts: Sequence[ProposedContext],
    options: ScuOptions,
    roles: Sequence[RoleSelection] = (),
) -> A:
    """Connect and negotiate (PS3.8 7.1); the association, of class `kind`, once the peer has
    accepted it. `roles` are SCP/SCU Role Selection proposals (PS3.7 D.3.3.4)."""
    where = f"{remote.aet}@{remote.host}:{remote.port}"
    try:
        request = encode_associate_rq(
            called_ae=remote.aet,
            calling_ae=calling_ae,
            contexts=contexts,
            max_length=options.max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            roles=roles,
        )
    except ValueError as exc:  # an AE title or UID that cannot go in the PDU
        raise DicomNetworkError(f"cannot associate with {where}: {exc}") from exc
    try:
        sock = socket.create_connection(
            (remote.host, remote.port), timeout=seconds(options.acse_timeout)
        )
    except OSError as exc:
        raise DicomNetworkError(f"cannot reach {where}: {exc}") from exc
    association = kind(sock, where, options)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if remote.tls:
            association.sock = options.tls_context().wrap_socket(sock, server_hostname=remote.host)
        association.negotiate(request, contexts)
    except (OSError, ssl.SSLError) as exc:
        association.drop()
        raise DicomNetworkError(f"association with {where} failed: {exc}") from exc
    except BaseException:
        association.drop()
        raise
    return association


class ScuAssociation:
    """An established association on which we are the requestor."""

    def __init__(self, sock: socket.socket, where: str, options: ScuOptions) -> None:
        self.sock: socket.socket | None = sock
        self.where = where
        self.options = options
        #: Accepted presentation contexts: id -> (abstract syntax, transfer syntax).
        self.contexts: dict[int, tuple[str, str]] = {}
        #: SCP/SCU roles the acceptor answered (PS3.7 D.3.3.4): SOP class -> (SCU, SCP).
        self.roles: dict[str, tuple[bool, bool]] = {}
        #: Longest PDV value we send: the peer's Maximum Length less the PDV header, even.
        self.fragment = BLOCK - FRAME
        self._message_id = 0

    # -- negotiation --------------------------------------------------------------------------

    def negotiate(self, request: bytes, proposed: Sequence[ProposedContext]) -> None:
        """Send the A-ASSOCIATE-RQ and act on the answer (PS3.8 9.3.3, 9.3.4)."""
        self.send(request)
        pdu_type, body = self.read_pdu()
        if pdu_type == PduType.A_ASSOCIATE_RJ:
            self.drop()
            raise DicomNetworkError(
                f"association rejected by {self.where}: {describe_reject(body)}"
            )
        if pdu_type != PduType.A_ASSOCIATE_AC:
            self.abort(AbortReason.UNEXPECTED_PDU)
            raise DicomNetworkError(f"{self.where} answered A-ASSOCIATE-RQ with PDU {pdu_type:#x}")
        try:
            accept = decode_associate_ac(body)
        except PduError as exc:
            self.abort(exc.reason)
            raise DicomNetworkError(f"malformed A-ASSOCIATE-AC from {self.where}: {exc}") from exc
        by_id = {context.id: context for context in proposed}
        for result in accept.results.values():
            context = by_id.get(result.id)
            if context is None or result.result != ContextResultCode.ACCEPTANCE:
                continue
            if result.transfer_syntax not in context.transfer_syntaxes:
                # PS3.8 9.3.3.2: the accepted syntax is one of those proposed.
                log.warning(
                    "%s accepted context %d with an unproposed syntax", self.where, result.id
                )
                continue
            self.contexts[context.id] = (context.abstract_syntax, result.transfer_syntax)
        self.roles = dict(accept.roles)
        if accept.max_length:
            self.fragment = min(accept.max_length, BLOCK) - PDV_OVERHEAD
        self.fragment -= self.fragment % 2
        if self.fragment < 2:
            self.abort(AbortReason.INVALID_PDU_PARAMETER)
            raise DicomNetworkError(f"{self.where} announced an unusable Maximum Length")
        self.settimeout(self.options.network_timeout)
        log.debug("associated with %s, %d contexts accepted", self.where, len(self.contexts))

    def context_for(self, abstract_syntax: str) -> tuple[int, str]:
        """(context id, transfer syntax) of an accepted context for `abstract_syntax`, the
        first proposed; DicomNetworkError (after a release) when the peer accepted none."""
        for context_id, (abstract, syntax) in sorted(self.contexts.items()):
            if abstract == abstract_syntax:
                return context_id, syntax
        self.release()
        raise DicomNetworkError(
            f"{self.where} accepted no presentation context for {abstract_syntax}"
        )

    def next_message_id(self) -> int:
        """Message IDs unique among our outstanding requests (PS3.7 9.3.1.1): 1, 2, ... 65535."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    # -- sending ------------------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        if sock is None:
            raise DicomNetworkError(f"the association with {self.where} has ended")
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            self.abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(
                f"{self.where} took nothing for {self.options.network_timeout:g} s"
            ) from exc
        except OSError as exc:
            raise self._lost(exc) from exc

    def send_command(
        self,
        context_id: int,
        command: CommandSet,
        data_set: bytes | None = None,
        *,
        data_set_follows: bool = False,
    ) -> None:
        """A command set, then its data set if any, each in PDVs of at most the peer's Maximum
        Length (PS3.8 9.3.5.1, E.2): the command set in implicit VR LE (PS3.7 6.3.1), the data
        set already encoded in the context's transfer syntax. `data_set_follows` announces a
        data set the caller sends itself (a C-STORE streamed from its source)."""
        has_dataset = data_set is not None or data_set_follows
        encoded = encode_command(command, has_dataset=has_dataset)
        frames = self._frames(context_id, encoded, COMMAND)
        if data_set is not None:
            frames += self._frames(context_id, data_set, 0)
        self.send(b"".join(frames))

    def _frames(self, context_id: int, data: bytes, kind: int) -> list[bytes]:
        step = self.fragment
        frames = []
        for at in range(0, max(len(data), 1), step):
            chunk = data[at : at + step]
            control = kind | (LAST if at + step >= len(data) else 0)
            frames.append(frame(context_id, control, len(chunk)) + chunk)
        return frames

    # -- receiving ----------------------------------------------------------------------------

    def read_message(self, what: str) -> tuple[int, Message]:
        """The next whole DIMSE message (PS3.7 6.3.1: a command set, then the data set its
        Command Data Set Type announces) and its presentation context id, waiting at most
        `dimse_timeout` for each PDU. `what` names the awaited answer in errors."""
        self.settimeout(self.options.dimse_timeout)
        command = bytearray()
        data = bytearray()
        decoded: CommandSet | None = None
        expect_data = False
        context = 0
        while True:
            pdu_type, body = self.read_pdu()
            if pdu_type != PduType.P_DATA_TF:
                self.unexpected(pdu_type)
            try:
                for context_id, control, fragment in iter_pdvs(body):
                    context = context_id
                    if control & COMMAND:
                        if decoded is not None:
                            raise PduError("a command fragment after the last one")
                        command += fragment
                        if control & LAST:
                            decoded, expect_data = decode_command(command)
                            if not expect_data:
                                break
                    else:
                        if decoded is None:
                            raise PduError("a data set fragment before its command")
                        data += fragment
                        if len(data) > MAX_RESPONSE_DATA_SET:
                            raise PduError("a response data set larger than 16 MiB")
                        if control & LAST:
                            break
                else:
                    continue
            except (PduError, CommandSetError) as exc:
                reason = exc.reason if isinstance(exc, PduError) else AbortReason.NOT_SPECIFIED
                self.abort(reason)
                raise DicomNetworkError(f"malformed {what} from {self.where}: {exc}") from exc
            break
        self.settimeout(self.options.network_timeout)
        assert decoded is not None
        return context, Message(decoded, bytes(data) if expect_data else None)

    def response(self, what: str, command_field: int, message_id: int) -> Message:
        """Read the response to request `message_id`: anything else (another command, another
        Message ID, no Status) is a protocol error and aborts (PS3.7 9.2)."""
        _, message = self.read_message(what)
        answer = message.command
        if (
            answer.get("CommandField") != command_field
            or answer.get("MessageIDBeingRespondedTo") != message_id
            or not isinstance(answer.get("Status"), int)
        ):
            self.abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(
                f"{self.where} answered {what.replace('-RSP', '-RQ')} {message_id}"
                " with an unexpected message"
            )
        return message

    def read_pdu(self, *, quiet: bool = False) -> tuple[int, bytes]:
        """One PDU; A-ABORT, A-RELEASE-RQ (unless `quiet`), EOF and timeouts end the
        association with a DicomNetworkError. The header is checked before the body is read:
        a P-DATA-TF longer than the Maximum Length we announced (1 MiB when we announced no
        limit) is refused, never allocated."""
        sock = self.sock
        if sock is None:
            raise DicomNetworkError(f"the association with {self.where} has ended")
        try:
            header = _recv_exactly(sock, HEADER.size)
            pdu_type, _, length = HEADER.unpack(header)
            check_header(pdu_type, length, self.options.max_pdu or MAX_CONTROL_PDU)
            body = _recv_exactly(sock, length)
        except TimeoutError as exc:
            self.abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(f"no answer from {self.where} in time") from exc
        except PduError as exc:
            self.abort(exc.reason)
            raise DicomNetworkError(f"malformed PDU from {self.where}: {exc}") from exc
        except (OSError, EOFError) as exc:
            self.drop()
            raise DicomNetworkError(f"{self.where} closed the connection ({exc})") from exc
        if pdu_type == PduType.A_ABORT:
            self.drop()
            raise DicomNetworkError(f"{self.where} aborted the association {describe_abort(body)}")
        if pdu_type == PduType.A_RELEASE_RQ and not quiet:
            with contextlib.suppress(OSError):
                sock.sendall(encode_release_rp())
            self.drop()
            raise DicomNetworkError(f"{self.where} released the association before answering")
        return pdu_type, body

    def unexpected(self, pdu_type: int) -> None:
        self.abort(AbortReason.UNEXPECTED_PDU)
        raise DicomNetworkError(f"unexpected PDU {pdu_type:#x} from {self.where}")

    def _lost(self, exc: OSError) -> DicomNetworkError:
        """The connection failed while we were sending: the peer has most likely aborted (an
        A-ABORT waits in our receive buffer), which is the more useful thing to report."""
        try:
            self.settimeout(1.0)
            self.read_pdu()
        except DicomNetworkError as said:
            return said
        finally:
            self.drop()
        return DicomNetworkError(f"connection to {self.where} lost: {exc}")

    # -- ending -------------------------------------------------------------------------------

    def release(self) -> None:
        """A-RELEASE-RQ, then wait for A-RELEASE-RP (PS3.8 7.2); on a release collision
        (the peer's A-RELEASE-RQ arrives first) answer it and keep waiting (9.2.2.3)."""
        if self.sock is None:
            return
        try:
            self.settimeout(self.options.acse_timeout)
            self.send(encode_release_rq())
            for _ in range(16):
                pdu_type, _ = self.read_pdu(quiet=True)
                if pdu_type == PduType.A_RELEASE_RP:
                    return
                if pdu_type == PduType.A_RELEASE_RQ:
                    self.send(encode_release_rp())
                # P-DATA-TF may still arrive after our request (Sta7): ignored.
            raise DicomNetworkError(f"{self.where} did not answer A-RELEASE-RQ")
        finally:
            self.drop()

    def abort(self, reason: AbortReason) -> None:
        """A-ABORT as the service user, or provider when the peer broke the protocol (PS3.8
        9.3.8), then close: PS3.8 7.3.1 lets the requestor close right after sending it."""
        sock = self.sock
        if sock is not None:
            source = (
                AbortSource.SERVICE_USER
                if reason == AbortReason.NOT_SPECIFIED
                else AbortSource.SERVICE_PROVIDER
            )
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                sock.sendall(encode_abort(source, reason))
        self.drop()

    def drop(self) -> None:
        """Close the transport connection without a word (the association is over)."""
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def settimeout(self, value: float) -> None:
        if self.sock is not None:
            self.sock.settimeout(seconds(value))


def frame(context_id: int, control: int, length: int) -> bytes:
    """P-DATA-TF header and PDV item header for one fragment (PS3.8 9.3.5, E.2)."""
    return FRAME_HEADERS.pack(4, 0, length + 6, length + 2, context_id, control)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    """`size` bytes, or EOFError when the peer closes first (TLS sockets take no MSG_WAITALL)."""
    if not size:
        return b""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if not n:
            raise EOFError(f"connection closed after {got} of {size} bytes")
        got += n
    return bytes(data)
