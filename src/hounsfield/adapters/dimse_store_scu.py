"""The Storage SCU (PS3.4 Annex B) on a blocking socket: C-MOVE sub-operations, forwarding,
`hounsfield send` and DICOM send jobs all store through it.

Why not pynetdicom here: its association runs a reactor thread that polls its queues (a 1 ms
nap per idle turn) and hands responses to the caller through a queue it may also drain itself,
which made C-MOVE to a fast peer run at a third of Orthanc's rate and, on a busy machine,
occasionally lose a C-STORE-RSP (ADR 0015). The port is synchronous and called from a worker
thread, so the simplest correct design is the caller's thread doing blocking I/O: send the
request, read the response, nothing in between.

What goes on the wire:

- A-ASSOCIATE-RQ with one presentation context per (SOP class, transfer syntax) proposed, and
  our Maximum Length, Implementation Class UID and Version Name (PS3.8 9.3.2, PS3.7 D.3.3.2).
- Per object, a C-STORE-RQ command (PS3.7 9.3.1.1, with Move Originator AE Title and Message ID
  for C-MOVE sub-operations, 9.1.1.1), then the data set exactly as it follows the File Meta
  Information in the PS3.10 file or blob (DESIGN.md key idea 1, `adapters.dimse_outgoing`),
  copied into a reused buffer between P-DATA-TF headers: PDVs as long as the peer's Maximum
  Length allows (PS3.8 D.1), so memory is one block per association whatever the object's size.
- The C-STORE-RSP's Status goes back to the caller. A-ABORT, A-RELEASE-RQ from the peer, a
  closed connection, a malformed PDU or a timeout end the association with a DicomNetworkError
  that says which (PS3.8 Table 9-26 for an abort's reason).
- `close` releases (A-RELEASE-RQ/RP, PS3.8 7.2), tolerating a release collision (9.2.2.3).

TCP_NODELAY is set (DESIGN.md §4), and DICOM TLS (PS3.15 B.1) wraps the socket with the same
client context as every other SCU association.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hounsfield.adapters.dimse_outgoing import DataSetSource, open_data_set
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
from hounsfield.ports.dicom_network import DicomNetworkError, OutgoingObject
from hounsfield.ports.index import RemoteAE

log = logging.getLogger(__name__)

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
#: Bytes in front of each fragment: the P-DATA-TF header and the PDV item header.
_FRAME = HEADER.size + PDV_OVERHEAD
_FRAME_HEADERS = struct.Struct(">BBIIBB")
#: Bytes of data set read and sent per system call; also the biggest PDU we send when the
#: peer sets no limit (Maximum Length 0, PS3.8 D.1.1), so memory stays bounded.
BLOCK = 1 << 20
_COMMAND = 0x01
_LAST = 0x02


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


def _seconds(value: float) -> float | None:
    return value if value > 0 else None


def open_store_session(
    remote: RemoteAE,
    *,
    calling_ae: str,
    contexts: Sequence[tuple[str, str]],
    options: ScuOptions,
) -> SocketStoreSession:
    """Connect and negotiate (PS3.8 7.1); one presentation context per (SOP class, transfer
    syntax), so the answer says for each syntax whether the peer takes it."""
    proposed = [
        ProposedContext(2 * n + 1, sop_class, [syntax])
        for n, (sop_class, syntax) in enumerate(dict.fromkeys(contexts))
    ]
    where = f"{remote.aet}@{remote.host}:{remote.port}"
    try:
        request = encode_associate_rq(
            called_ae=remote.aet,
            calling_ae=calling_ae,
            contexts=proposed,
            max_length=options.max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        )
    except ValueError as exc:  # an AE title or UID that cannot go in the PDU
        raise DicomNetworkError(f"cannot associate with {where}: {exc}") from exc
    try:
        sock = socket.create_connection(
            (remote.host, remote.port), timeout=_seconds(options.acse_timeout)
        )
    except OSError as exc:
        raise DicomNetworkError(f"cannot reach {where}: {exc}") from exc
    session = SocketStoreSession(sock, where, options)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if remote.tls:
            session.sock = options.tls_context().wrap_socket(sock, server_hostname=remote.host)
        session.negotiate(request, proposed)
    except (OSError, ssl.SSLError) as exc:
        session.drop()
        raise DicomNetworkError(f"association with {where} failed: {exc}") from exc
    except BaseException:
        session.drop()
        raise
    return session


class SocketStoreSession:
    """One association on which we are the Storage SCU (`ports.dicom_network.StoreSession`)."""

    def __init__(self, sock: socket.socket, where: str, options: ScuOptions) -> None:
        self.sock: socket.socket | None = sock
        self.where = where
        self.options = options
        self._contexts: dict[tuple[str, str], int] = {}
        self._accepted: dict[str, set[str]] = {}
        self._fragment = BLOCK - _FRAME
        self._buffer = bytearray()
        self._message_id = 0

    # -- negotiation --------------------------------------------------------------------------

    def negotiate(self, request: bytes, proposed: Sequence[ProposedContext]) -> None:
        """Send the A-ASSOCIATE-RQ and act on the answer (PS3.8 9.3.3, 9.3.4)."""
        self._send(request)
        pdu_type, body = self._read_pdu()
        if pdu_type == PduType.A_ASSOCIATE_RJ:
            self.drop()
            raise DicomNetworkError(
                f"association rejected by {self.where}: {describe_reject(body)}"
            )
        if pdu_type != PduType.A_ASSOCIATE_AC:
            self._abort(AbortReason.UNEXPECTED_PDU)
            raise DicomNetworkError(f"{self.where} answered A-ASSOCIATE-RQ with PDU {pdu_type:#x}")
        try:
            accept = decode_associate_ac(body)
        except PduError as exc:
            self._abort(exc.reason)
            raise DicomNetworkError(f"malformed A-ASSOCIATE-AC from {self.where}: {exc}") from exc
        by_id = {context.id: context for context in proposed}
        for result in accept.results.values():
            context = by_id.get(result.id)
            if context is None or result.result != ContextResultCode.ACCEPTANCE:
                continue
            syntax = context.transfer_syntaxes[0]
            if result.transfer_syntax != syntax:
                # PS3.8 9.3.3.2: the accepted syntax is one of those proposed, and we proposed one.
                log.warning(
                    "%s accepted context %d with an unproposed syntax", self.where, result.id
                )
                continue
            self._contexts[(context.abstract_syntax, syntax)] = context.id
            self._accepted.setdefault(context.abstract_syntax, set()).add(syntax)
        if accept.max_length:
            self._fragment = min(accept.max_length, BLOCK) - PDV_OVERHEAD
        self._fragment -= self._fragment % 2
        if self._fragment < 2:
            self._abort(AbortReason.INVALID_PDU_PARAMETER)
            raise DicomNetworkError(f"{self.where} announced an unusable Maximum Length")
        per_block = max(1, BLOCK // (self._fragment + _FRAME))
        self._buffer = bytearray(per_block * (self._fragment + _FRAME))
        self._settimeout(self.options.network_timeout)
        log.debug("associated with %s, %d contexts accepted", self.where, len(self._contexts))

    # -- the StoreSession port ----------------------------------------------------------------

    def accepted_syntaxes(self, sop_class_uid: str) -> frozenset[str]:
        return frozenset(self._accepted.get(sop_class_uid, ()))

    def store(self, item: OutgoingObject, *, move_originator: tuple[str, int] | None = None) -> int:
        """C-STORE one PS3.10 file's data set as stored; the Status (PS3.4 B.2.3). A file
        that cannot be sent (not PS3.10, a syntax other than the one announced, not accepted)
        raises ValueError before anything is sent, so the association stays usable."""
        if self.sock is None:
            raise DicomNetworkError(f"the association with {self.where} has ended")
        context_id = self._contexts.get((item.sop_class_uid, item.transfer_syntax_uid))
        if context_id is None:
            raise ValueError(
                f"{self.where} accepted no context for {item.sop_class_uid}"
                f" in {item.transfer_syntax_uid}"
            )
        source = open_data_set(item)
        try:
            self._message_id = self._message_id % 0xFFFF + 1
            command: CommandSet = {
                "AffectedSOPClassUID": item.sop_class_uid,
                "CommandField": C_STORE_RQ,
                "MessageID": self._message_id,
                "Priority": 0,
                "AffectedSOPInstanceUID": item.sop_instance_uid,
            }
            if move_originator is not None:
                command["MoveOriginatorApplicationEntityTitle"] = move_originator[0]
                command["MoveOriginatorMessageID"] = move_originator[1]
            self._send_command(context_id, encode_command(command, has_dataset=True))
            self._send_data_set(context_id, source)
        finally:
            source.close()
        return self._response(self._message_id)

    def close(self) -> None:
        """A-RELEASE-RQ, then wait for A-RELEASE-RP (PS3.8 7.2); on a release collision
        (the peer's A-RELEASE-RQ arrives first) answer it and keep waiting (9.2.2.3)."""
        if self.sock is None:
            return
        try:
            self._settimeout(self.options.acse_timeout)
            self._send(encode_release_rq())
            for _ in range(16):
                pdu_type, _ = self._read_pdu(quiet=True)
                if pdu_type == PduType.A_RELEASE_RP:
                    return
                if pdu_type == PduType.A_RELEASE_RQ:
                    self._send(encode_release_rp())
                # P-DATA-TF may still arrive after our request (Sta7): ignored.
            raise DicomNetworkError(f"{self.where} did not answer A-RELEASE-RQ")
        finally:
            self.drop()

    # -- sending ------------------------------------------------------------------------------

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        if sock is None:
            raise DicomNetworkError(f"the association with {self.where} has ended")
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            self._abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(
                f"{self.where} took nothing for {self.options.network_timeout:g} s"
            ) from exc
        except OSError as exc:
            raise self._lost(exc) from exc

    def _send_command(self, context_id: int, command: bytes) -> None:
        """The command set in PDVs of at most the peer's Maximum Length (PS3.8 9.3.5.1)."""
        step = self._fragment
        frames = []
        for at in range(0, len(command), step):
            chunk = command[at : at + step]
            control = _COMMAND | (_LAST if at + step >= len(command) else 0)
            frames.append(_frame(context_id, control, len(chunk)) + chunk)
        self._send(b"".join(frames))

    def _send_data_set(self, context_id: int, source: DataSetSource) -> None:
        """The data set's bytes, each fragment copied in place behind its P-DATA-TF and PDV
        headers (PS3.8 9.3.5, E.2), one `sendall` per block of fragments."""
        view = memoryview(self._buffer)
        fragment = self._fragment
        last = False
        while not last:
            pos = 0
            while not last and pos + _FRAME + fragment <= len(view):
                try:
                    n = source.readinto(view[pos + _FRAME : pos + _FRAME + fragment])
                    last = source.at_end()
                except Exception as exc:
                    # Part of the message is on the wire: it cannot be completed (PS3.7 has
                    # no way to withdraw a C-STORE-RQ), so the association goes.
                    self._abort(AbortReason.NOT_SPECIFIED)
                    raise DicomNetworkError(f"reading the object failed mid-send: {exc}") from exc
                control = _LAST if last else 0
                _FRAME_HEADERS.pack_into(view, pos, 4, 0, n + 6, n + 2, context_id, control)
                pos += _FRAME + n
            self._send(view[:pos])

    # -- receiving ----------------------------------------------------------------------------

    def _response(self, message_id: int) -> int:
        """Read the C-STORE-RSP (PS3.7 9.3.1.2) to `message_id`; its Status."""
        self._settimeout(self.options.dimse_timeout)
        command = bytearray()
        response: CommandSet = {}
        done = False
        expect_data = False
        while not done:
            pdu_type, body = self._read_pdu()
            if pdu_type != PduType.P_DATA_TF:
                self._unexpected(pdu_type)
            try:
                for _, control, fragment in iter_pdvs(body):
                    if control & _COMMAND:
                        command += fragment
                        if control & _LAST:
                            response, expect_data = decode_command(command)
                            done = not expect_data
                    elif control & _LAST and expect_data:
                        done = True  # a data set on a C-STORE-RSP has no use: dropped
            except (PduError, CommandSetError) as exc:
                reason = exc.reason if isinstance(exc, PduError) else AbortReason.NOT_SPECIFIED
                self._abort(reason)
                raise DicomNetworkError(f"malformed response from {self.where}: {exc}") from exc
        self._settimeout(self.options.network_timeout)
        if (
            response.get("CommandField") != C_STORE_RSP
            or response.get("MessageIDBeingRespondedTo") != message_id
            or not isinstance(response.get("Status"), int)
        ):
            self._abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(
                f"{self.where} answered C-STORE-RQ {message_id} with an unexpected message"
            )
        status = response["Status"]
        assert isinstance(status, int)
        return status

    def _read_pdu(self, *, quiet: bool = False) -> tuple[int, bytes]:
        """One PDU; A-ABORT, A-RELEASE-RQ (unless `quiet`), EOF and timeouts end the
        association with a DicomNetworkError. The header is checked before the body is read:
        a P-DATA-TF longer than the Maximum Length we announced (1 MiB when we announced no
        limit: a C-STORE-RSP is a few hundred bytes) is refused, never allocated."""
        sock = self.sock
        if sock is None:
            raise DicomNetworkError(f"the association with {self.where} has ended")
        try:
            header = _recv_exactly(sock, HEADER.size)
            pdu_type, _, length = HEADER.unpack(header)
            check_header(pdu_type, length, self.options.max_pdu or MAX_CONTROL_PDU)
            body = _recv_exactly(sock, length)
        except TimeoutError as exc:
            self._abort(AbortReason.NOT_SPECIFIED)
            raise DicomNetworkError(f"no answer from {self.where} in time") from exc
        except PduError as exc:
            self._abort(exc.reason)
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

    def _unexpected(self, pdu_type: int) -> None:
        self._abort(AbortReason.UNEXPECTED_PDU)
        raise DicomNetworkError(f"unexpected PDU {pdu_type:#x} from {self.where}")

    def _lost(self, exc: OSError) -> DicomNetworkError:
        """The connection failed while we were sending: the peer has most likely aborted (an
        A-ABORT waits in our receive buffer), which is the more useful thing to report."""
        try:
            self._settimeout(1.0)
            self._read_pdu()
        except DicomNetworkError as said:
            return said
        finally:
            self.drop()
        return DicomNetworkError(f"connection to {self.where} lost: {exc}")

    # -- ending -------------------------------------------------------------------------------

    def _abort(self, reason: AbortReason) -> None:
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

    def _settimeout(self, seconds: float) -> None:
        if self.sock is not None:
            self.sock.settimeout(_seconds(seconds))


def _frame(context_id: int, control: int, length: int) -> bytes:
    """P-DATA-TF header and PDV item header for one fragment (PS3.8 9.3.5, E.2)."""
    return _FRAME_HEADERS.pack(4, 0, length + 6, length + 2, context_id, control)


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
