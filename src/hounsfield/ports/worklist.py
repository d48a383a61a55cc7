"""The worklist port: scheduled procedure steps that the Modality Worklist SCP answers with.

Items are DICOM JSON objects (PS3.18 F.2) holding the attributes of PS3.4 Table K.6-1: the
Scheduled Procedure Step Sequence, Requested Procedure, Imaging Service Request, Visit and
Patient attributes. The admin API writes them (and later HL7 ORM messages); the Modality
Worklist C-FIND SCP reads them. Every call is scoped to one partition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hounsfield.domain.model import DicomJson


@dataclass(frozen=True, slots=True)
class WorklistItem:
    partition: str
    item_id: str
    dataset: DicomJson


class WorklistStore(Protocol):
    """Synchronous and thread-safe, like the index."""

    def put(self, item: WorklistItem) -> bool:
        """Create or replace; True when created."""
        ...

    def create(self, item: WorklistItem) -> bool:
        """Create only: False, and nothing written, when the item exists (atomic, also between
        processes sharing the store)."""
        ...

    def modify(
        self, partition: str, item_id: str, change: Callable[[DicomJson], DicomJson]
    ) -> DicomJson | None:
        """Replace an item's dataset by `change(current)` atomically (no concurrent change is
        lost); None when there is no such item. An exception from `change` writes nothing."""
        ...

    def get(self, partition: str, item_id: str) -> WorklistItem | None: ...

    def delete(self, partition: str, item_id: str) -> bool: ...

    def items(self, partition: str) -> list[WorklistItem]:
        """Every item of the partition, in insertion order."""
        ...

    def close(self) -> None: ...
