"""The change feed: the outbox of one partition as a list of instance changes, in the style of
the Azure DICOM service's change feed (v1: `offset` is a sequence number, entries are
instance-level `create`/`delete` actions with the instance's current `State`).

It reads the index outbox directly, not the bus: the outbox is the durable, ordered log, so
the feed is complete whatever bus is configured. Level events (`series.deleted`,
`study.deleted`) are not listed: a series or study delete also writes one `instance.deleted`
per instance (services/lifecycle.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hounsfield.domain import events
from hounsfield.domain.model import Level
from hounsfield.ports.index import Event, IndexStore

ACTIONS = {events.INSTANCE_STORED: "create", events.INSTANCE_DELETED: "delete"}
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
#: Outbox rows read per round when skipping events the feed does not list.
_SCAN = 500


@dataclass(frozen=True, slots=True)
class ChangeFeedEntry:
    sequence: int
    study_uid: str
    series_uid: str | None
    sop_uid: str | None
    action: str
    timestamp: datetime
    state: str
    #: The instance's DICOM JSON document (BulkDataURIs relative to the instance), when
    #: asked for and the instance is current.
    metadata: bytes | None = None

    def to_json(self, metadata: Any = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Sequence": self.sequence,
            "StudyInstanceUid": self.study_uid,
            "SeriesInstanceUid": self.series_uid,
            "SopInstanceUid": self.sop_uid,
            "Action": self.action,
            "Timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "State": self.state,
        }
        if metadata is not None:
            entry["Metadata"] = metadata
        return entry


class ChangeFeedService:
    def __init__(self, index: IndexStore) -> None:
        self.index = index
        #: partition -> (outbox seq scanned up to, last listed seq or 0): the outbox is
        #: append-only, so `latest` only reads what was appended since its previous call.
        self._tail: dict[str, tuple[int, int]] = {}
        self._tail_lock = threading.Lock()

    def _listed(self, partition: str, offset: int, limit: int) -> list[Event]:
        """The next `limit` events the feed lists, skipping level events."""
        found: list[Event] = []
        seq = offset
        while len(found) < limit:
            batch = self.index.events_since(seq, _SCAN, partition)
            found += [e for e in batch if e.type in ACTIONS]
            if len(batch) < _SCAN:
                break
            seq = batch[-1].seq
        return found[:limit]

    def entries(
        self, partition: str, offset: int, limit: int, *, include_metadata: bool = False
    ) -> list[ChangeFeedEntry]:
        """Entries with Sequence > offset, at most `limit`, in sequence order."""
        out: list[ChangeFeedEntry] = []
        for event in self._listed(partition, offset, limit):
            data = event.data
            study = str(data.get("studyInstanceUID", ""))
            series = data.get("seriesInstanceUID")
            sop = data.get("sopInstanceUID")
            current = isinstance(sop, str) and self.index.level_exists(partition, Level.IMAGE, sop)
            metadata = None
            if include_metadata and current and isinstance(series, str) and isinstance(sop, str):
                metadata = next(
                    (doc for _, doc in self.index.metadata(partition, study, series, sop)), None
                )
            out.append(
                ChangeFeedEntry(
                    sequence=event.seq,
                    study_uid=study,
                    series_uid=series if isinstance(series, str) else None,
                    sop_uid=sop if isinstance(sop, str) else None,
                    action=ACTIONS[event.type],
                    timestamp=event.time or datetime.now(UTC),
                    state="current" if current else "deleted",
                    metadata=metadata,
                )
            )
        return out

    def latest(self, partition: str, *, include_metadata: bool = False) -> ChangeFeedEntry | None:
        """The entry with the highest sequence (None for an empty feed). The first call in a
        process reads the partition's outbox forward; later calls read only what was appended
        since (an index method for the last event would make the first one O(1) too)."""
        with self._tail_lock:
            seq, last = self._tail.get(partition, (0, 0))
        while batch := self.index.events_since(seq, 5000, partition):
            listed = [e for e in batch if e.type in ACTIONS]
            if listed:
                last = listed[-1].seq
            seq = batch[-1].seq
        with self._tail_lock:
            if seq > self._tail.get(partition, (0, 0))[0]:
                self._tail[partition] = (seq, last)
        if last == 0:
            return None
        (entry,) = self.entries(partition, last - 1, 1, include_metadata=include_metadata)
        return entry
