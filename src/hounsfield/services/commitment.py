"""Storage Commitment (PS3.4 Annex J): whether the archive holds what an SCU asks it to keep.

An instance is committed when its index row is committed (durable, DESIGN.md key idea 3) with
the same SOP Class UID and its object is in the blob store.
"""

from __future__ import annotations

from hounsfield.domain.commitment import CommitmentRequest, CommitmentResult, decide
from hounsfield.domain.levels import (
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    first_value,
)
from hounsfield.domain.model import Level
from hounsfield.domain.query import MatchKey, Query, SingleValue, UidList
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import IndexStore

_CHUNK = 500


class CommitmentService:
    def __init__(self, index: IndexStore, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    def check(self, request: CommitmentRequest, partition: str) -> CommitmentResult:
        uids = list(dict.fromkeys(r.sop_instance_uid for r in request.references))
        stored: dict[str, str] = {}
        present: list[str] = []
        for start in range(0, len(uids), _CHUNK):
            chunk = tuple(uids[start : start + _CHUNK])
            matcher = SingleValue(chunk[0]) if len(chunk) == 1 else UidList(chunk)
            query = Query(
                Level.IMAGE, keys=(MatchKey(SOP_INSTANCE_UID, "UI", matcher),), partition=partition
            )
            for row in self.index.query(query).rows:
                sop, sop_class = first_value(row, SOP_INSTANCE_UID), first_value(row, SOP_CLASS_UID)
                study = first_value(row, STUDY_INSTANCE_UID)
                series = first_value(row, SERIES_INSTANCE_UID)
                if not all(isinstance(v, str) for v in (sop, sop_class, study, series)):
                    continue
                stored[str(sop)] = str(sop_class)
                found = self.index.instances(partition, str(study), str(series), str(sop))
                if found and all(self.blobs.exists(i.blob_key) for i in found):
                    present.append(str(sop))
        return decide(request, stored, present)
