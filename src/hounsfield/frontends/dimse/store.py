"""C-STORE SCP (PS3.4 Annex B, PS3.7 9.1.1): from P-DATA fragments to a durable instance.

The data set is never held in memory: as its PDV fragments arrive they are appended to a staging
file that starts with a 128-byte preamble, "DICM" and File Meta Information built from the
command set and the presentation context (PS3.10 7.1), so what is stored is a PS3.10 file whose
data set bytes are exactly those received (DESIGN.md key idea 1). The staged file then goes
through the same ingest service as STOW-RS (`prepare`, `store`) in a worker thread, and the
C-STORE-RSP is sent only after `store` returned, i.e. once the instance is durable
(docs/adr/0002-durability.md).

Statuses (PS3.4 B.2.3, Table B.2-1): 0000 stored, and also for a duplicate kept under the
"keep-first" policy (the stored instance is the one the sender meant; a warning would make
some modalities resend forever); A700 out of resources; A900 data set does not match SOP class
(missing/invalid UIDs, or SOP Class/Instance UID of the data set differing from the command);
C000 cannot understand (not a DICOM data set); 0110 processing failure; 0111 duplicate under
the "reject" policy; 0122 SOP class not supported. A failure carries Error Comment (0000,0902)
with the reason, never patient data.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from hounsfield.domain.implementation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)
from hounsfield.domain.status import FailureReason, WarningReason
from hounsfield.frontends.dimse.api import Message, Status
from hounsfield.services.ingest import IngestService, InstanceResult, Outcome, Prepared
from hounsfield.services.staging import StagedFile, StagingArea, StagingWriter

log = logging.getLogger(__name__)

PREAMBLE = bytes(128) + b"DICM"


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian group 0002 element (PS3.10 7.1: always this encoding)."""
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii", errors="replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, source_ae: str
) -> bytes:
    """File Meta Information (PS3.10 Table 7.1-1) for a received object: what the command set
    and the presentation context say it is, written by Hounsfield (Implementation Class UID),
    received from `source_ae` (Source Application Entity Title, (0002,0016))."""
    body = b"".join(
        (
            _element(0x0001, b"OB", b"\x00\x01"),
            _element(0x0002, b"UI", _padded(sop_class_uid, b"\x00")),
            _element(0x0003, b"UI", _padded(sop_instance_uid, b"\x00")),
            _element(0x0010, b"UI", _padded(transfer_syntax, b"\x00")),
            _element(0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
            _element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
            _element(0x0016, b"AE", _padded(source_ae[:16], b" ")),
        )
    )
    return _element(0x0000, b"UL", struct.pack("<I", len(body))) + body


#: Fragments queued to the store lane before the reader waits for it: bounds the memory of one
#: association (8 PDUs of 128 KiB = 1 MiB) when the disk is slower than the network.
MAX_QUEUED_FRAGMENTS = 8


class StoreReceiver:
    """Streams one C-STORE-RQ data set to a staging file, behind its PS3.10 header.

    Writing and hashing happen on the association's *store lane*, a single worker thread:
    the event loop only queues fragments, so receiving the next PDU overlaps with hashing and
    writing the previous one (both release the GIL), and order is kept because the lane has
    one thread. Ingest then runs on the same lane, right after the last write.
    """

    def __init__(
        self, staging: StagingArea, message: Message, calling_ae: str, lane: Executor
    ) -> None:
        self.message = message
        self.lane = lane
        self._staging = staging
        self._writer: StagingWriter | None = None
        self._error: BaseException | None = None
        self._queued: deque[Future[None]] = deque()
        header = PREAMBLE + file_meta(
            message.affected_sop_class_uid,
            message.affected_sop_instance_uid,
            message.context.transfer_syntax,
            calling_ae,
        )
        self._submit(self._open, header)

    def _submit(self, fn: Callable[[bytes | memoryview], None], data: bytes | memoryview) -> None:
        self._queued.append(self.lane.submit(fn, data))

    def _open(self, header: bytes | memoryview) -> None:
        try:
            self._writer = self._staging.writer()
            self._writer.write(header)
        except Exception as exc:
            self._error = exc

    def _write(self, fragment: bytes | memoryview) -> None:
        if self._error is None and self._writer is not None:
            try:
                self._writer.write(fragment)
            except Exception as exc:
                self._error = exc

    def write(self, fragment: memoryview) -> None:
        """Queue a fragment (a view of an immutable PDU body, so safe to hand to a thread)."""
        self._submit(self._write, fragment)

    @property
    def backlog(self) -> bool:
        while self._queued and self._queued[0].done():
            self._queued.popleft()
        return len(self._queued) > MAX_QUEUED_FRAGMENTS

    async def drain(self) -> None:
        """Back-pressure: wait until the lane has caught up to the bound."""
        while self.backlog:
            await asyncio.wrap_future(self._queued[0])

    def finish_and_ingest(self, ingest: IngestService, partition: str) -> StoreOutcome:
        """On the lane, after every write: close the staged file and ingest it."""
        writer = self._writer
        if self._error is not None or writer is None:
            if writer is not None:
                writer.discard()
            log.error("C-STORE staging write failed: %s", self._error)
            return StoreOutcome(FailureReason.OUT_OF_RESOURCES, "could not write the object")
        return ingest_staged(ingest, writer.finish(), self.message, partition)

    def discard(self) -> None:
        """A half-received C-STORE leaves nothing behind (DESIGN.md §6): the staged file is
        removed on the lane, after the writes already queued."""

        def discard(_: bytes | memoryview) -> None:
            if self._writer is not None:
                self._writer.discard()

        try:
            self._submit(discard, b"")
        except RuntimeError:  # the lane is shut down: its queued writes have run
            discard(b"")


class DiscardingReceiver:
    """Swallows the data set of a C-STORE-RQ refused before its data set arrived (0122, A900):
    the fragments must still be read to stay in step with the peer (PS3.7 9.3.1.1)."""

    received = 0

    def write(self, fragment: memoryview) -> None:
        self.received += len(fragment)

    def discard(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    status: int
    comment: str = ""
    #: What was stored, for the audit trail (empty when nothing was).
    study_uid: str = ""
    sop_class_uid: str = ""


def _status_of(result: InstanceResult) -> StoreOutcome:
    what = {"study_uid": result.study_uid or "", "sop_class_uid": result.sop_class_uid or ""}
    if result.outcome is Outcome.STORED:
        return StoreOutcome(Status.SUCCESS, **what)
    if result.outcome is Outcome.WARNING:
        if result.warning is WarningReason.DUPLICATE_KEPT or result.warning is None:
            return StoreOutcome(Status.SUCCESS, **what)
        return StoreOutcome(int(result.warning), result.message, **what)
    failure = result.failure if result.failure is not None else FailureReason.PROCESSING_FAILURE
    return StoreOutcome(int(failure), result.message)


def _check_command_match(prepared: Prepared, message: Message) -> str | None:
    """PS3.4 B.2.3: the data set must be the instance the command announces. The walker falls
    back to File Meta Information for missing SOP UIDs, and our meta comes from the command,
    so presence is checked in the data set itself."""
    parsed = prepared.parsed
    dataset = parsed.dataset_json
    if "00080016" not in dataset:
        return "the data set has no SOP Class UID (0008,0016)"
    if "00080018" not in dataset:
        return "the data set has no SOP Instance UID (0008,0018)"
    if parsed.sop_instance_uid != message.affected_sop_instance_uid:
        return "SOP Instance UID of the data set differs from Affected SOP Instance UID"
    if parsed.sop_class_uid != message.affected_sop_class_uid:
        return "SOP Class UID of the data set differs from Affected SOP Class UID"
    return None


def ingest_staged(
    ingest: IngestService, staged: StagedFile, message: Message, partition: str
) -> StoreOutcome:
    """Prepare and store one received object (runs in a worker thread)."""
    prepared = ingest.prepare(staged, partition)
    if not isinstance(prepared, Prepared):
        return _status_of(prepared)
    mismatch = _check_command_match(prepared, message)
    if mismatch is not None:
        ingest.staging.discard(staged)
        return StoreOutcome(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, mismatch)
    (result,) = ingest.store([prepared])
    if result.warning is WarningReason.DUPLICATE_KEPT:
        log.info("C-STORE of an instance already stored; kept the stored one")
    return _status_of(result)


def check_request(message: Message, storage_classes: frozenset[str]) -> StoreOutcome | None:
    """Checks that need no data set: a C-STORE on a context for another SOP class, or for a
    SOP class we do not store, is refused before anything is written."""
    sop_class = message.affected_sop_class_uid
    if sop_class not in storage_classes:
        return StoreOutcome(Status.SOP_CLASS_NOT_SUPPORTED, "SOP class is not a storage class")
    if sop_class != message.context.abstract_syntax:
        return StoreOutcome(
            Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Affected SOP Class UID differs from the presentation context's abstract syntax",
        )
    if not message.affected_sop_instance_uid:
        return StoreOutcome(
            Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, "no Affected SOP Instance UID"
        )
    return None
