"""The index port: everything the archive knows about its objects, except their bytes.

Ingest is two-phase (DESIGN.md key idea 3): `begin` records pending rows, the blob is written,
then `commit` makes the instances visible together with their outbox events in one transaction.
A crash between the two leaves pending rows that `sweep_pending` removes, with their blobs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from hounsfield.domain.model import ByteRange, DicomJson, Level, PixelLayout
from hounsfield.domain.query import Query
from hounsfield.ports.audit import AuditLog
from hounsfield.ports.auth import ApiKeyStore
from hounsfield.ports.grants import GrantStore
from hounsfield.ports.jobs import JobStore

#: What `mark_stable` scans: series or studies.
Scope = Literal["series", "study"]


@dataclass(frozen=True, slots=True)
class IndexCapabilities:
    """What a back end can do natively; services fall back or refuse otherwise."""

    fuzzy_names: bool = True
    sequence_matching: bool = True
    concurrent_writers: bool = False
    #: Reads run inside this process (an embedded database: tens of microseconds, no network
    #: round trip), so a request may make a small one on its event loop instead of paying
    #: for a hop to a worker thread.
    embedded: bool = False


@dataclass(frozen=True, slots=True)
class NewInstance:
    """An instance ready to be indexed: identifiers, level attributes and its stored layout."""

    partition: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size: int
    sha256: str
    patient_attrs: DicomJson
    study_attrs: DicomJson
    series_attrs: DicomJson
    instance_attrs: DicomJson
    metadata: bytes  # the per-instance DICOM JSON document, UTF-8, BulkDataURIs relative
    pixel: PixelLayout | None
    bulk_ranges: dict[str, ByteRange]
    received_at: datetime


class BeginOutcome(enum.Enum):
    """What `begin` decided for one instance."""

    NEW = "new"  # a pending row now exists; write the blob, then commit
    DUPLICATE = "duplicate"  # the SOP Instance UID is already stored in this partition
    CONFLICT = "conflict"  # the SOP Instance UID exists under another study or series
    IN_PROGRESS = "in-progress"  # another upload of the same instance is pending


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """A committed instance as retrieval needs it."""

    partition: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size: int
    sha256: str
    pixel: PixelLayout | None
    bulk_ranges: dict[str, ByteRange]
    number_of_frames: int


@dataclass(frozen=True, slots=True)
class DerivedCopy:
    """Another encoding of a stored instance, kept next to the untouched original (an HTJ2K
    copy decodes ~15x faster than JPEG 2000, DESIGN.md §4); pixel values are identical."""

    kind: str  # "htj2k"
    transfer_syntax_uid: str
    blob_key: str
    size: int
    sha256: str
    pixel: PixelLayout | None


@dataclass(frozen=True, slots=True)
class InstanceKey:
    """Where an instance sits: enough to build its URL, nothing to decode."""

    partition: str
    study_uid: str
    series_uid: str
    sop_uid: str


class DocumentCache(Protocol):
    """Where `IndexStore.metadata` looks for documents before reading them from the index, and
    keeps those it had to read (`services.caching.MetadataDocuments` over the `Cache` port).

    `version` is the index's identity of one stored content of an instance: the SHA-256 of
    its bytes and the time its row was created. It changes when the instance is deleted and
    stored again, even with the same bytes (whose document may differ, e.g. after a change
    of `bulk_data_threshold`), so a document of an earlier content is never served."""

    def get_many(self, entries: Sequence[tuple[InstanceKey, str]]) -> list[bytes | None]:
        """The cached document of each (instance, version), in order, None when absent."""

    def set_many(self, entries: Sequence[tuple[InstanceKey, str, bytes]]) -> None:
        """Keep documents just read from the index, with the version they were listed with."""


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox event (DESIGN.md key idea 4), committed in the transaction it describes."""

    type: str
    partition: str
    data: dict[str, Any]
    seq: int = 0
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueryPage:
    """Matches of one query page. `more` says whether results were cut by the limit."""

    rows: list[DicomJson]
    more: bool


@dataclass(frozen=True, slots=True)
class RemoteAE:
    """A remote DICOM application entity, the destination of C-MOVE and forwarding."""

    aet: str
    host: str
    port: int
    partition: str = "default"
    tls: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts and stored bytes, per partition."""

    partition: str
    patients: int
    studies: int
    series: int
    instances: int
    bytes: int


@dataclass(frozen=True, slots=True)
class DeletedInstances:
    """What a delete removed from the index; the caller deletes the blobs afterwards."""

    blob_keys: list[str] = field(default_factory=list)
    instances: int = 0


class DocumentStore(Protocol):
    """Named JSON documents (forwarding rules): the owning service validates their content."""

    def put(self, name: str, document: dict[str, Any]) -> bool:
        """Create or replace; True when created."""

    def get(self, name: str) -> dict[str, Any] | None: ...

    def all(self) -> list[dict[str, Any]]:
        """Every document, by name."""

    def delete(self, name: str) -> bool: ...


class IndexStore(Protocol):
    """The index database. Every method is synchronous and thread-safe; services call it from
    worker threads. Every method is scoped to one partition: no call can see two."""

    capabilities: IndexCapabilities
    #: Durable jobs kept in the same database (DESIGN.md key idea 5).
    jobs: JobStore
    #: Study-level read grants (ports/grants.py).
    grants: GrantStore
    #: The hash-chained audit trail (PS3.15 A.5 messages, ports/audit.py).
    audit: AuditLog
    #: Forwarding rules (services/forwarding.py), shared by every replica.
    forward_rules: DocumentStore
    #: API keys, kept hashed (ports/auth.py).
    api_keys: ApiKeyStore

    def migrate(self) -> None:
        """Create or upgrade the schema (numbered, immutable migrations)."""

    def close(self) -> None: ...

    def begin(self, instances: Sequence[NewInstance]) -> list[BeginOutcome]:
        """Record pending rows for the instances that are new, in one transaction."""

    def commit(self, instances: Sequence[NewInstance], events: Sequence[Event]) -> None:
        """Make pending instances visible, update their parents and write the events, atomically
        and durably: when this returns, the instances survive a crash."""

    def abort(self, partition: str, sop_uids: Sequence[str]) -> None:
        """Drop pending rows whose blob could not be written."""

    def sweep_pending(self, older_than: datetime) -> list[str]:
        """Remove pending rows older than the cut-off; return their blob keys for deletion."""

    def query(self, query: Query) -> QueryPage:
        """Match at `query.level` per PS3.4 C.2.2.2; each row holds the level's attributes, its
        parents' identifying attributes and the computed ones (number of related, modalities)."""

    def instances(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> list[StoredInstance]:
        """Committed instances under a study, series or one instance, in series/instance order."""

    def metadata(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        *,
        cache: DocumentCache | None = None,
    ) -> Iterator[tuple[InstanceKey, bytes]]:
        """The prebuilt DICOM JSON document of each matching instance, in the order of
        `instances`. Only keys are decoded: this is the hot path of series metadata. The
        instances are always listed from the index (which alone says what exists now); with a
        `cache`, each page of documents is looked up there first, in one call, and only the
        missing ones are read from the index and handed back to the cache."""

    def delete(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        events: Sequence[Event] = (),
    ) -> DeletedInstances:
        """Remove rows (and now-empty parents) and write the events, atomically."""

    def all_instances(self, partition: str | None = None) -> Iterator[StoredInstance]:
        """Every committed instance (for integrity checks and re-indexing)."""

    def events_since(self, seq: int, limit: int, partition: str | None = None) -> list[Event]:
        """Outbox events with a sequence number greater than `seq`, in order: all of them for
        the relay (`partition=None`), one partition's for its change feed (PS3.18-style
        paging by sequence must not return a short page because of other tenants)."""

    def put_remote_ae(self, ae: RemoteAE) -> bool:
        """Create or replace; True when created."""

    def get_remote_ae(self, aet: str) -> RemoteAE | None: ...

    def list_remote_aes(self) -> list[RemoteAE]: ...

    def delete_remote_ae(self, aet: str) -> bool: ...

    def stats(self) -> list[Stats]: ...

    def level_exists(self, partition: str, level: Level, uid: str) -> bool:
        """Whether a committed study, series or instance with this UID exists."""

    def put_derived(self, partition: str, sop_uid: str, copy: DerivedCopy) -> bool:
        """Record (or replace) a derived copy of a committed instance; False when the instance
        is not (or no longer) stored: the caller then deletes the copy's blob."""

    def derived(self, partition: str, sop_uid: str, kind: str) -> DerivedCopy | None: ...

    def derived_blob_keys(self) -> list[str]:
        """Blob keys of every derived copy (integrity checks: they are not orphans)."""

    def studies_unchanged_since(self, partition: str, cutoff: datetime, limit: int) -> list[str]:
        """Up to `limit` Study Instance UIDs of the partition whose last change (a committed
        instance) is older than `cutoff`, oldest first (retention)."""

    def claim_lease(self, name: str, owner: str, seconds: float) -> int | None:
        """Acquire the named lease if it is free or expired, or renew it if `owner` holds it,
        for `seconds`; return its position, or None while another owner holds it."""

    def advance_lease(self, name: str, owner: str, position: int) -> bool:
        """Store the position; False (nothing stored) when `owner` no longer holds the lease."""

    def release_lease(self, name: str, owner: str) -> None:
        """Let the lease expire now, if `owner` holds it."""

    def mark_stable(self, scope: Scope, quiet_before: datetime, limit: int) -> list[Event]:
        """Announce up to `limit` series or studies (all partitions) that received no instance
        since `quiet_before` and were not announced since their last change: mark them and
        write `SeriesStable`/`StudyStable` events to the outbox in one transaction."""
