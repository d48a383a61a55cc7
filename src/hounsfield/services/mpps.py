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
        # One atomic insert: of two N-CREATEs of one instance (two associations, two DIMSE
        # workers) exactly one succeeds.
        if not self.store.create(WorklistItem(partition, sop_uid, dataset)):
            raise MppsError(DUPLICATE_SOP_INSTANCE, f"{sop_uid} exists already")

    def update(self, partition: str, sop_uid: str, modification: DicomJson) -> DicomJson:
        """N-SET; 0112 for an unknown SOP Instance (PS3.7 10.1.3.1.6). The read, the checks of
        `apply_set` and the write are one transaction, so concurrent N-SETs lose nothing."""
        updated = self.store.modify(
            partition, sop_uid, lambda current: apply_set(current, modification)
        )
        if updated is None:
            raise MppsError(NO_SUCH_SOP_INSTANCE, f"no performed procedure step {sop_uid}")
        return updated

    def get(self, partition: str, sop_uid: str) -> WorklistItem | None:
        return self.store.get(partition, sop_uid)

    def items(self, partition: str) -> list[WorklistItem]:
        return self.store.items(partition)
