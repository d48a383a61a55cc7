"""Lifecycle: deletion (PS3.18 10.x DELETE, and later rejection, retention and tiering)."""

from __future__ import annotations

import logging

from hounsfield.domain import events
from hounsfield.domain.errors import NotFoundError
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import Event, IndexStore
from hounsfield.services.caching import MetadataDocuments

log = logging.getLogger(__name__)


class LifecycleService:
    def __init__(
        self, index: IndexStore, blobs: BlobStore, documents: MetadataDocuments | None = None
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.documents = documents

    def delete(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> int:
        """Delete a study, series or instance: index rows first (atomically, with the event),
        then the cached metadata documents and the blobs. A crash between the two leaves
        unreferenced blobs that `hounsfield check --repair` removes, never index rows that point
        to missing bytes; a cached document left behind is never served again, since a new
        store of the instance has another version (`services.caching`)."""
        if sop_uid is not None:
            kind, data = events.INSTANCE_DELETED, {"sopInstanceUID": sop_uid}
        elif series_uid is not None:
            kind, data = events.SERIES_DELETED, {}
        else:
            kind, data = events.STUDY_DELETED, {}
        data = {"studyInstanceUID": study_uid, **data}
        if series_uid is not None:
            data["seriesInstanceUID"] = series_uid
        event = Event(type=kind, partition=partition, data=data)
        instance_events = self._instance_events(partition, study_uid, series_uid, sop_uid)
        deleted = self.index.delete(
            partition, study_uid, series_uid, sop_uid, events=[*instance_events, event]
        )
        if self.documents is not None and deleted.instances:
            removed = (
                [sop_uid]
                if sop_uid is not None
                else [str(e.data["sopInstanceUID"]) for e in instance_events]
            )
            self.documents.forget(partition, removed)
        if deleted.instances == 0:
            raise NotFoundError(
                f"nothing to delete at study {study_uid}"
                + (f" series {series_uid}" if series_uid else "")
                + (f" instance {sop_uid}" if sop_uid else "")
            )
        for key in deleted.blob_keys:
            try:
                self.blobs.delete(key)
            except OSError as exc:
                log.warning("blob %s could not be deleted (left for check --repair): %s", key, exc)
        return deleted.instances

    def _instance_events(
        self, partition: str, study_uid: str, series_uid: str | None, sop_uid: str | None
    ) -> list[Event]:
        """A series or study delete also records one `instance.deleted` per instance, so the
        change feed and instance-level consumers see every removed instance (the Azure-style
        change feed lists instances). Listed before the delete transaction: an instance
        committed in between is removed with only the level event to tell."""
        if sop_uid is not None:
            return []
        return [
            Event(
                type=events.INSTANCE_DELETED,
                partition=partition,
                data=events.instance_payload(i.study_uid, i.series_uid, i.sop_uid, i.sop_class_uid),
            )
            for i in self.index.instances(partition, study_uid, series_uid)
        ]
