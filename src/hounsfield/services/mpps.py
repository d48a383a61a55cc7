"""Performed procedure steps as the modalities report them (PS3.4 Annex F), kept as DICOM
JSON documents so the admin API (and later HL7 / reporting) can read them."""

from __future__ import annotations

from hounsfield.domain.model import DicomJson
from hounsfield.domain.mpps import (
    DUPLICATE_SOP_INSTANCE,
    NO_SUCH_SOP_INSTANCE,
    MppsError,
    apply_set,
    check_create,
)
from hounsfield.ports.worklist import WorklistItem, WorklistStore


class MppsService:
    def __init__(self, store: WorklistStore) -> None:
        self.store = store

    def create(self, partition: str, sop_uid: str, dataset: DicomJson) -> None:
        """N-CREATE; 0111 when the SOP Instance exists already (PS3.7 10.1.5.1.6)."""
        check_create(dataset)
        if self.store.get(partition, sop_uid) is not None:
            raise MppsError(DUPLICATE_SOP_INSTANCE, f"{sop_uid} exists already")
        self.store.put(WorklistItem(partition, sop_uid, dataset))

    def update(self, partition: str, sop_uid: str, modification: DicomJson) -> DicomJson:
        """N-SET; 0112 for an unknown SOP Instance (PS3.7 10.1.3.1.6)."""
        current = self.store.get(partition, sop_uid)
        if current is None:
            raise MppsError(NO_SUCH_SOP_INSTANCE, f"no performed procedure step {sop_uid}")
        updated = apply_set(current.dataset, modification)
        self.store.put(WorklistItem(partition, sop_uid, updated))
        return updated

    def get(self, partition: str, sop_uid: str) -> WorklistItem | None:
        return self.store.get(partition, sop_uid)

    def items(self, partition: str) -> list[WorklistItem]:
        return self.store.items(partition)
