"""The DIMSE client port: what the archive asks of remote application entities as an SCU.

C-MOVE sub-operations, forwarding and the `send`/`echo`/`find`/`move` commands need a Storage,
Verification and Query/Retrieve SCU (PS3.4 Annexes A, B, C). The port is narrow and
synchronous (services call it from worker threads); the adapter that implements it (our own
blocking-socket associations, ADR 0015 and 0016) is chosen by the composition root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hounsfield.domain.model import DicomJson
from hounsfield.ports.index import RemoteAE


class DicomNetworkError(ConnectionError):
    """No association (refused, rejected, unreachable) or it ended before the answer."""


@dataclass(frozen=True, slots=True)
class OutgoingObject:
    """A PS3.10 object to send with C-STORE; its data set goes as stored (byte for byte) when
    its transfer syntax is accepted. It is a local file (`path`) or, for a stored instance,
    its bytes in order (`chunks`, a blob store's `iter_bytes`), read once while sending, so
    no scratch copy of the blob is made."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    path: Path | None = None
    chunks: Callable[[], Iterator[bytes]] | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.chunks is None):
            raise ValueError("an OutgoingObject has either a path or chunks")


@dataclass(frozen=True, slots=True)
class DimseReply:
    """One response of a C-FIND or C-MOVE: its Status, the sub-operation counts (C-MOVE) and
    the identifier, if any, as DICOM JSON."""

    status: int
    identifier: DicomJson | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error_comment: str = ""


class StoreSession(Protocol):
    """An established association on which we are the Storage SCU."""

    def accepted_syntaxes(self, sop_class_uid: str) -> frozenset[str]:
        """Transfer syntaxes the peer accepted for this SOP class (PS3.8 9.3.3.2)."""
        ...

    def store(
        self,
        item: OutgoingObject,
        *,
        move_originator: tuple[str, int] | None = None,
    ) -> int:
        """C-STORE `item` in its own transfer syntax, which must be accepted; returns the
        peer's Status (PS3.4 B.2.3). `move_originator` is (AE title, Message ID) of the C-MOVE
        this sub-operation serves (PS3.7 9.1.1.1). Raises DicomNetworkError when the
        association ends."""
        ...

    def close(self) -> None:
        """Release the association (PS3.8 7.2)."""
        ...


class DicomNetwork(Protocol):
    """Verification, Storage and Query/Retrieve SCU towards remote AEs."""

    def echo(self, remote: RemoteAE, *, calling_ae: str) -> int:
        """C-ECHO (PS3.7 9.1.5); the Status. Raises DicomNetworkError."""
        ...

    def open_store(
        self,
        remote: RemoteAE,
        *,
        calling_ae: str,
        contexts: Sequence[tuple[str, str]],
    ) -> StoreSession:
        """Associate proposing one presentation context per (SOP class, transfer syntax), so
        the peer says for each syntax whether it takes it. Raises DicomNetworkError."""
        ...

    def find(
        self, remote: RemoteAE, *, calling_ae: str, sop_class_uid: str, identifier: DicomJson
    ) -> Iterator[DimseReply]:
        """C-FIND (PS3.4 C.4.1): every response, pending ones with their identifier. Closing
        the iterator before the final response cancels the operation (C-CANCEL, PS3.7
        9.3.2.3)."""
        ...

    def move(
        self,
        remote: RemoteAE,
        *,
        calling_ae: str,
        sop_class_uid: str,
        identifier: DicomJson,
        destination: str,
    ) -> Iterator[DimseReply]:
        """C-MOVE (PS3.4 C.4.2): every response with its sub-operation counts; the final one
        may carry the Failed SOP Instance UID List as its identifier. Closing the iterator
        before the final response cancels the operation (C-CANCEL, PS3.7 9.3.4.3)."""
        ...

    def event_report(
        self,
        remote: RemoteAE,
        *,
        calling_ae: str,
        sop_class_uid: str,
        sop_instance_uid: str,
        event_type: int,
        information: DicomJson,
    ) -> int:
        """N-EVENT-REPORT on a new association on which we propose the SCP role of the SOP
        class (SCP/SCU Role Selection, PS3.7 D.3.3.4), as a Storage Commitment SCP does when
        the requesting association has ended (PS3.4 J.3.3); the Status of the response."""
        ...

    def max_contexts(self) -> int:
        """Presentation contexts one association may propose (PS3.8 9.3.2.2: 128)."""
        ...
