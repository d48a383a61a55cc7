"""C-STORE to a remote AE: the Storage SCU behind C-MOVE, forwarding and `hounsfield send`.

Transfer syntax negotiation (PS3.8 9.3.2.2, PS3.5 10): each SOP class is proposed once per
syntax (the stored one, explicit VR little endian, implicit VR little endian), so the peer's
answer tells exactly which it takes. Then, per object:

- stored syntax accepted -> the stored bytes go as they are (byte-identical), streamed from
  the blob store;
- stored syntax is implicit or explicit VR little endian and the other one is accepted -> the
  data set is rewritten in that syntax (pydicom; values are unchanged, only the encoding);
- otherwise, with a transcoder (the pixel service), the object is decoded and re-encoded in
  a syntax the peer accepted, uncompressed little endian first (PS3.5 8.2: the attributes that
  depend on the syntax are rewritten, lossy history kept);
- otherwise the sub-operation fails with reason "no accepted transfer syntax".

Objects are grouped by SOP class into associations of at most 128 contexts (PS3.8 9.3.2.2).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydicom import dcmread
from pydicom.uid import UID

from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.dicom_network import (
    DicomNetwork,
    DicomNetworkError,
    OutgoingObject,
    StoreSession,
)
from hounsfield.ports.index import RemoteAE, StoredInstance

log = logging.getLogger(__name__)

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_REWRITABLE = {IMPLICIT_LE: EXPLICIT_LE, EXPLICIT_LE: IMPLICIT_LE}


class SendOutcome(enum.Enum):
    """How one C-STORE sub-operation counts (PS3.4 C.4.2.3.1): Bxxx statuses are warnings."""

    COMPLETED = "completed"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    sop_instance_uid: str
    outcome: SendOutcome
    status: int | None = None
    reason: str = ""
    transfer_syntax: str | None = None


def outcome_of(status: int) -> SendOutcome:
    """Success 0000; Warning B000/B006/B007 and other Bxxx (PS3.4 B.2.3); anything else failed."""
    if status == 0:
        return SendOutcome.COMPLETED
    if status & 0xF000 == 0xB000:
        return SendOutcome.WARNING
    return SendOutcome.FAILED


_Opener = Callable[[], contextlib.AbstractContextManager[Path]]
_Chunks = Callable[[], Iterator[bytes]]


@dataclass(frozen=True, slots=True)
class _Item:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    #: The object as a local file, for rewriting (a scratch copy when it is a blob).
    open: _Opener
    #: The object's bytes, when it can be sent without a file (a blob as stored).
    chunks: _Chunks | None = None
    instance: StoredInstance | None = None  # a stored instance can be transcoded


class Transcoder(Protocol):
    """Decodes and re-encodes stored instances (services/pixels, PixelService)."""

    def can_transcode(self, instance: StoredInstance, target: str) -> bool: ...

    def transcode(self, instance: StoredInstance, target: str) -> Iterator[bytes]: ...


def choose_syntax(
    stored: str,
    accepted: Collection[str],
    instance: StoredInstance | None,
    transcoder: Transcoder | None,
) -> str | None:
    """The syntax to send an object in: as stored, else re-encoded in the other uncompressed
    little endian syntax, else transcoded (uncompressed little endian preferred, as every
    peer reads it), else None."""
    if stored in accepted:
        return stored
    other = _REWRITABLE.get(stored)
    if other is not None and other in accepted:
        return other
    if transcoder is None or instance is None:
        return None
    for candidate in (EXPLICIT_LE, IMPLICIT_LE, *sorted(accepted)):
        if candidate in accepted and transcoder.can_transcode(instance, candidate):
            return candidate
    return None


def proposed_syntaxes(stored: str) -> tuple[str, ...]:
    """The syntaxes proposed for an object: its own, then explicit and implicit VR LE."""
    return tuple(dict.fromkeys((stored, EXPLICIT_LE, IMPLICIT_LE)))


def rewrite_little_endian(source: Path, target: Path, transfer_syntax: str) -> None:
    """Rewrite a PS3.10 file in implicit or explicit VR little endian (PS3.5 A.1/A.2).

    Only the encoding changes: same elements, same values, File Meta Information updated.
    """
    ds = dcmread(source)
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.save_as(
        target,
        implicit_vr=transfer_syntax == IMPLICIT_LE,
        little_endian=True,
        enforce_file_format=True,
    )


class DicomSendService:
    """Sends stored instances or local files to a remote AE, counting every sub-operation."""

    def __init__(
        self,
        network: DicomNetwork,
        blobs: BlobStore,
        *,
        calling_ae: str,
        transcoder: Transcoder | None = None,
    ) -> None:
        self.network = network
        self.blobs = blobs
        self.calling_ae = calling_ae
        self.transcoder = transcoder

    def echo(self, remote: RemoteAE) -> int:
        return self.network.echo(remote, calling_ae=self.calling_ae)

    def send_instances(
        self,
        remote: RemoteAE,
        instances: Sequence[StoredInstance],
        *,
        on_result: Callable[[SendResult], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        move_originator: tuple[str, int] | None = None,
    ) -> list[SendResult]:
        """C-STORE stored instances (C-MOVE sub-operations, forwarding), in order."""
        items = []
        for i in instances:
            chunks = functools.partial(self.blobs.iter_bytes, i.blob_key)
            items.append(
                _Item(
                    i.sop_class_uid,
                    i.sop_uid,
                    i.transfer_syntax_uid,
                    _materialised(chunks),
                    chunks,
                    i,
                )
            )
        return self._send(remote, items, on_result, cancelled, move_originator)

    def send_files(
        self,
        remote: RemoteAE,
        files: Sequence[OutgoingObject],
        *,
        on_result: Callable[[SendResult], None] | None = None,
    ) -> list[SendResult]:
        """C-STORE local PS3.10 files (`hounsfield send`)."""
        items = [
            _Item(
                f.sop_class_uid,
                f.sop_instance_uid,
                f.transfer_syntax_uid,
                _fixed(f.path) if f.path is not None else _materialised(f.chunks),
                f.chunks,
            )
            for f in files
        ]
        return self._send(remote, items, on_result, None, None)

    def _send(
        self,
        remote: RemoteAE,
        items: Sequence[_Item],
        on_result: Callable[[SendResult], None] | None,
        cancelled: Callable[[], bool] | None,
        move_originator: tuple[str, int] | None,
    ) -> list[SendResult]:
        results: list[SendResult] = []

        def record(result: SendResult) -> None:
            results.append(result)
            if on_result is not None:
                on_result(result)

        for batch in self._batches(items):
            if cancelled is not None and cancelled():
                break
            contexts = sorted(
                {
                    (it.sop_class_uid, ts)
                    for it in batch
                    for ts in proposed_syntaxes(it.transfer_syntax_uid)
                }
            )
            try:
                session = self.network.open_store(
                    remote, calling_ae=self.calling_ae, contexts=contexts
                )
            except DicomNetworkError as exc:
                for item in batch:
                    record(SendResult(item.sop_instance_uid, SendOutcome.FAILED, reason=str(exc)))
                continue
            try:
                for position, item in enumerate(batch):
                    if cancelled is not None and cancelled():
                        break
                    try:
                        record(self._store_one(session, item, move_originator))
                    except DicomNetworkError as exc:
                        for rest in batch[position:]:
                            record(
                                SendResult(
                                    rest.sop_instance_uid, SendOutcome.FAILED, reason=str(exc)
                                )
                            )
                        break
            finally:
                with contextlib.suppress(DicomNetworkError):
                    session.close()
        return results

    def _batches(self, items: Sequence[_Item]) -> Iterator[list[_Item]]:
        """Items grouped so that each association proposes at most max_contexts contexts."""
        limit = self.network.max_contexts()
        batch: list[_Item] = []
        contexts: set[tuple[str, str]] = set()
        for item in items:
            wanted = {
                (item.sop_class_uid, ts) for ts in proposed_syntaxes(item.transfer_syntax_uid)
            }
            if batch and len(contexts | wanted) > limit:
                yield batch
                batch, contexts = [], set()
            batch.append(item)
            contexts |= wanted
        if batch:
            yield batch

    def _store_one(
        self, session: StoreSession, item: _Item, move_originator: tuple[str, int] | None
    ) -> SendResult:
        accepted = session.accepted_syntaxes(item.sop_class_uid)
        stored = item.transfer_syntax_uid
        if not accepted:
            return SendResult(
                item.sop_instance_uid,
                SendOutcome.FAILED,
                reason=f"the peer accepted no context for SOP class {item.sop_class_uid}",
            )
        target = choose_syntax(stored, accepted, item.instance, self.transcoder)
        if target is None:
            return SendResult(
                item.sop_instance_uid,
                SendOutcome.FAILED,
                reason=f"the peer accepts no transfer syntax {stored} can be sent in",
            )
        try:
            if target not in (stored, _REWRITABLE.get(stored)):
                status = self._store_transcoded(session, item, target, move_originator)
            elif target == stored and item.chunks is not None:
                status = session.store(
                    OutgoingObject(
                        item.sop_class_uid, item.sop_instance_uid, stored, chunks=item.chunks
                    ),
                    move_originator=move_originator,
                )
            else:
                with item.open() as path:
                    if target == stored:
                        status = session.store(
                            OutgoingObject(item.sop_class_uid, item.sop_instance_uid, stored, path),
                            move_originator=move_originator,
                        )
                    else:
                        status = self._store_rewritten(session, item, path, target, move_originator)
        except DicomNetworkError:
            raise
        except Exception as exc:  # missing or unreadable object: this sub-operation fails
            log.error("cannot send %s: %s", item.sop_instance_uid, exc)
            return SendResult(item.sop_instance_uid, SendOutcome.FAILED, reason=str(exc))
        return SendResult(item.sop_instance_uid, outcome_of(status), status, "", target)

    def _store_rewritten(
        self,
        session: StoreSession,
        item: _Item,
        path: Path,
        target: str,
        move_originator: tuple[str, int] | None,
    ) -> int:
        with tempfile.TemporaryDirectory(prefix="hounsfield-rewrite-") as scratch:
            rewritten = Path(scratch) / "object.dcm"
            rewrite_little_endian(path, rewritten, target)
            return session.store(
                OutgoingObject(item.sop_class_uid, item.sop_instance_uid, target, rewritten),
                move_originator=move_originator,
            )

    def _store_transcoded(
        self,
        session: StoreSession,
        item: _Item,
        target: str,
        move_originator: tuple[str, int] | None,
    ) -> int:
        assert self.transcoder is not None and item.instance is not None
        with tempfile.TemporaryDirectory(prefix="hounsfield-transcode-") as scratch:
            transcoded = Path(scratch) / "object.dcm"
            with transcoded.open("wb") as fp:
                for chunk in self.transcoder.transcode(item.instance, target):
                    fp.write(chunk)
            return session.store(
                OutgoingObject(item.sop_class_uid, item.sop_instance_uid, target, transcoded),
                move_originator=move_originator,
            )


def _materialised(chunks: _Chunks | None) -> _Opener:
    """An opener that streams the bytes into a scratch file: rewriting needs a file, and a
    blob store need not have one."""

    @contextlib.contextmanager
    def materialise() -> Iterator[Path]:
        assert chunks is not None
        with tempfile.TemporaryDirectory(prefix="hounsfield-send-") as scratch:
            path = Path(scratch) / "object.dcm"
            with path.open("wb") as fp:
                for chunk in chunks():
                    fp.write(chunk)
            yield path

    return materialise


def _fixed(path: Path) -> _Opener:
    @contextlib.contextmanager
    def opened() -> Iterator[Path]:
        yield path

    return opened


__all__ = [
    "DicomSendService",
    "SendOutcome",
    "SendResult",
    "Transcoder",
    "choose_syntax",
    "outcome_of",
    "proposed_syntaxes",
    "rewrite_little_endian",
]
