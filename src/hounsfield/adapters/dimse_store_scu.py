"""The Storage SCU (PS3.4 Annex B) on a blocking socket: C-MOVE sub-operations, forwarding,
`hounsfield send` and DICOM send jobs all store through it.

Why not pynetdicom here: its association runs a reactor thread that polls its queues (a 1 ms
nap per idle turn) and hands responses to the caller through a queue it may also drain itself,
which made C-MOVE to a fast peer run at a third of Orthanc's rate and, on a busy machine,
occasionally lose a C-STORE-RSP (ADR 0015). The association itself (negotiation, reading
messages, release, abort, timeouts) is `adapters.dimse_association`, shared with the
Verification and Query/Retrieve SCU; this module adds what is particular to C-STORE.

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
"""

from __future__ import annotations

from collections.abc import Sequence

from hounsfield.adapters.dimse_association import (
    BLOCK,
    FRAME,
    FRAME_HEADERS,
    LAST,
    ScuAssociation,
    ScuOptions,
    open_association,
)
from hounsfield.adapters.dimse_outgoing import DataSetSource, open_data_set
from hounsfield.domain.commandset import CommandSet
from hounsfield.domain.pdu import AbortReason, ProposedContext
from hounsfield.ports.dicom_network import DicomNetworkError, OutgoingObject
from hounsfield.ports.index import RemoteAE

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001


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
    return open_association(
        SocketStoreSession, remote, calling_ae=calling_ae, contexts=proposed, options=options
    )


class SocketStoreSession(ScuAssociation):
    """One association on which we are the Storage SCU (`ports.dicom_network.StoreSession`)."""

    _by_syntax: dict[tuple[str, str], int]
    _buffer: bytearray

    def negotiate(self, request: bytes, proposed: Sequence[ProposedContext]) -> None:
        """Negotiate, then size the send buffer: as many whole fragments of the peer's Maximum
        Length as fit in one block, so one `sendall` carries about 1 MiB."""
        super().negotiate(request, proposed)
        self._by_syntax = {pair: context_id for context_id, pair in self.contexts.items()}
        per_block = max(1, BLOCK // (self.fragment + FRAME))
        self._buffer = bytearray(per_block * (self.fragment + FRAME))

    # -- the StoreSession port ----------------------------------------------------------------

    def accepted_syntaxes(self, sop_class_uid: str) -> frozenset[str]:
        return frozenset(syntax for sop, syntax in self.contexts.values() if sop == sop_class_uid)

    def store(self, item: OutgoingObject, *, move_originator: tuple[str, int] | None = None) -> int:
        """C-STORE one PS3.10 file's data set as stored; the Status (PS3.4 B.2.3). A file
        that cannot be sent (not PS3.10, a syntax other than the one announced, not accepted)
        raises ValueError before anything is sent, so the association stays usable."""
        if self.sock is None:
            raise DicomNetworkError(f"the association with {self.where} has ended")
        context_id = self._by_syntax.get((item.sop_class_uid, item.transfer_syntax_uid))
        if context_id is None:
            raise ValueError(
                f"{self.where} accepted no context for {item.sop_class_uid}"
                f" in {item.transfer_syntax_uid}"
            )
        source = open_data_set(item)
        try:
            message_id = self.next_message_id()
            command: CommandSet = {
                "AffectedSOPClassUID": item.sop_class_uid,
                "CommandField": C_STORE_RQ,
                "MessageID": message_id,
                "Priority": 0,
                "AffectedSOPInstanceUID": item.sop_instance_uid,
            }
            if move_originator is not None:
                command["MoveOriginatorApplicationEntityTitle"] = move_originator[0]
                command["MoveOriginatorMessageID"] = move_originator[1]
            self.send_command(context_id, command, None, data_set_follows=True)
            self._send_data_set(context_id, source)
        finally:
            source.close()
        # A data set on a C-STORE-RSP has no use: dropped.
        status = self.response("C-STORE-RSP", C_STORE_RSP, message_id).command["Status"]
        assert isinstance(status, int)
        return status

    def close(self) -> None:
        self.release()

    def _send_data_set(self, context_id: int, source: DataSetSource) -> None:
        """The data set's bytes, each fragment copied in place behind its P-DATA-TF and PDV
        headers (PS3.8 9.3.5, E.2), one `sendall` per block of fragments."""
        view = memoryview(self._buffer)
        fragment = self.fragment
        last = False
        while not last:
            pos = 0
            while not last and pos + FRAME + fragment <= len(view):
                try:
                    n = source.readinto(view[pos + FRAME : pos + FRAME + fragment])
                    last = source.at_end()
                except Exception as exc:
                    # Part of the message is on the wire: it cannot be completed (PS3.7 has
                    # no way to withdraw a C-STORE-RQ), so the association goes.
                    self.abort(AbortReason.NOT_SPECIFIED)
                    raise DicomNetworkError(f"reading the object failed mid-send: {exc}") from exc
                control = LAST if last else 0
                FRAME_HEADERS.pack_into(view, pos, 4, 0, n + 6, n + 2, context_id, control)
                pos += FRAME + n
            self.send(view[:pos])
