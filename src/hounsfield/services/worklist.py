"""The modality worklist: scheduled procedure steps written by the admin API (later HL7 ORM)
and answered by the Modality Worklist C-FIND SCP (PS3.4 Annex K)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

from pydicom.dataset import Dataset

from hounsfield.domain.errors import HounsfieldError
from hounsfield.domain.model import DicomJson
from hounsfield.domain.mwl import (
    SCHEDULED_PROCEDURE_STEP_SEQUENCE,
    WorklistRequest,
    worklist_response,
)
from hounsfield.ports.worklist import WorklistItem, WorklistStore

_ITEM_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TAG = re.compile(r"[0-9A-F]{8}")


class InvalidWorklistItemError(HounsfieldError):
    """The item is not a DICOM JSON object the worklist can serve."""


def check_item(item_id: str, dataset: object) -> DicomJson:
    """A worklist item must be DICOM JSON (PS3.18 F.2) that encodes as DICOM, with a Scheduled
    Procedure Step Sequence of one item or more (Type 1 in PS3.4 Table K.6-1)."""
    if not _ITEM_ID.fullmatch(item_id):
        raise InvalidWorklistItemError(f"{item_id!r}: an item id is 1-64 of A-Z a-z 0-9 . _ -")
    if not isinstance(dataset, dict) or not all(
        isinstance(tag, str) and _TAG.fullmatch(tag) and isinstance(element, dict)
        for tag, element in dataset.items()
    ):
        raise InvalidWorklistItemError("the item must be a DICOM JSON object (PS3.18 F.2)")
    steps = dataset.get(SCHEDULED_PROCEDURE_STEP_SEQUENCE, {}).get("Value")
    if not isinstance(steps, list) or not steps or not isinstance(steps[0], dict):
        raise InvalidWorklistItemError(
            "ScheduledProcedureStepSequence (00400100) with one item is required"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Dataset.from_json(dataset)
    except Exception as exc:
        raise InvalidWorklistItemError(f"not valid DICOM JSON: {exc}") from exc
    return dataset


class WorklistService:
    def __init__(self, store: WorklistStore) -> None:
        self.store = store

    def put(self, partition: str, item_id: str, dataset: object) -> bool:
        return self.store.put(WorklistItem(partition, item_id, check_item(item_id, dataset)))

    def get(self, partition: str, item_id: str) -> WorklistItem | None:
        return self.store.get(partition, item_id)

    def delete(self, partition: str, item_id: str) -> bool:
        return self.store.delete(partition, item_id)

    def items(self, partition: str) -> list[WorklistItem]:
        return self.store.items(partition)

    def find(self, request: WorklistRequest, partition: str) -> Iterator[DicomJson]:
        """Response identifiers of the items that match (PS3.4 K.4.1.3.1)."""
        for item in self.store.items(partition):
            if request.matches(item.dataset):
                yield worklist_response(item.dataset, request)
