"""Query/Retrieve as a service: C-FIND answers, and C-MOVE/C-GET sub-operation plans.

The DIMSE handlers only translate (DESIGN.md §7): they decode identifiers, call this service
and map outcomes to statuses. The service runs the shared query AST on the index (the same
path as QIDO-RS, DESIGN.md key idea 2) and resolves retrieve identifiers to the stored
instances that C-STORE sub-operations will carry (PS3.4 C.4.2.2, C.4.3.2).
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Iterator
from dataclasses import replace
from pathlib import Path

from hounsfield.domain.cfind import FindRequest, response_identifier
from hounsfield.domain.cretrieve import RetrieveRequest
from hounsfield.domain.levels import SERIES_INSTANCE_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.query import Query
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import IndexStore, RemoteAE, StoredInstance
from hounsfield.services.dicom_send import (
    EXPLICIT_LE,
    IMPLICIT_LE,
    Transcoder,
    choose_syntax,
    rewrite_little_endian,
)
from hounsfield.services.pixels.syntaxes import encodable

#: Rows fetched per index call while streaming C-FIND results.
PAGE = 200


def _uid(row: DicomJson, tag: str) -> str | None:
    values = row.get(tag, {}).get("Value") or []
    return str(values[0]) if values else None


class QueryRetrieveService:
    def __init__(self, index: IndexStore, *, ae_title: str) -> None:
        self.index = index
        self.ae_title = ae_title

    def find(self, request: FindRequest) -> Iterator[DicomJson]:
        """Response identifiers, one per match, streamed page by page (PS3.4 C.4.1.3.1):
        a C-CANCEL between two pending responses stops the query without reading the rest."""
        offset = 0
        while True:
            page = self.index.query(replace(request.query, limit=PAGE, offset=offset))
            for row in page.rows:
                yield response_identifier(row, request, retrieve_ae=self.ae_title)
            if not page.more:
                return
            offset += len(page.rows)

    def plan(self, request: RetrieveRequest, partition: str) -> list[StoredInstance]:
        """The instances a C-MOVE/C-GET moves (PS3.4 C.4.2.2.1): every committed instance
        under the matched entities, each once, in series/instance order per entity.

        A PATIENT retrieve is planned through the patient's studies, since studies are the
        unit the index lists instances by.
        """
        level = Level.STUDY if request.level is Level.PATIENT else request.level
        rows = self.index.query(Query(level=level, keys=request.keys(), partition=partition))
        planned: dict[str, StoredInstance] = {}
        for row in rows.rows:
            study = _uid(row, STUDY_INSTANCE_UID)
            if study is None:
                continue
            series = _uid(row, SERIES_INSTANCE_UID) if level is not Level.STUDY else None
            sop = _uid(row, SOP_INSTANCE_UID) if level is Level.IMAGE else None
            for instance in self.index.instances(partition, study, series, sop):
                planned.setdefault(instance.sop_uid, instance)
        return list(planned.values())

    def destination(self, aet: str, partition: str) -> RemoteAE | None:
        """The C-MOVE destination from the remote AE registry, if it is registered in the
        requester's partition (DESIGN.md key idea 6); otherwise A801 (PS3.4 C.4.2.1.5)."""
        found = self.index.get_remote_ae(aet.strip())
        if found is None or found.partition != partition:
            return None
        return found


def data_set_offset(header: bytes) -> int:
    """Where the data set starts in a PS3.10 file (PS3.10 7.1): after the 128-byte preamble,
    "DICM" and the File Meta Information, whose length the first meta element (0002,0000)
    File Meta Information Group Length gives (explicit VR little endian, PS3.10 7.1)."""
    if len(header) < 144 or header[128:132] != b"DICM" or header[132:136] != b"\x02\x00\x00\x00":
        raise ValueError("not a PS3.10 file with a File Meta Information Group Length")
    return 144 + int.from_bytes(header[140:144], "little")


class ObjectReader:
    """The data set of a stored object, for C-STORE sub-operations on the requesting
    association (C-GET, PS3.4 C.4.3.3): read in chunks, or rewritten in the other
    uncompressed little endian syntax when the peer accepted only that one."""

    def __init__(self, blobs: BlobStore, transcoder: Transcoder | None = None) -> None:
        self.blobs = blobs
        self.transcoder = transcoder

    def choose(self, instance: StoredInstance, accepted: Collection[str]) -> str | None:
        """The syntax a sub-operation sends `instance` in (dicom_send.choose_syntax)."""
        return choose_syntax(instance.transfer_syntax_uid, accepted, instance, self.transcoder)

    def candidates(self, instance: StoredInstance) -> list[str]:
        """Syntaxes `instance` could be sent in, to look up among the accepted contexts."""
        stored = instance.transfer_syntax_uid
        extra = encodable() if self.transcoder is not None else []
        return list(dict.fromkeys([stored, EXPLICIT_LE, IMPLICIT_LE, *extra]))

    def transcoded(self, instance: StoredInstance, transfer_syntax: str) -> bytes:
        """The data set decoded and re-encoded in `transfer_syntax` (after the File Meta
        Information, which the C-STORE carries in its presentation context instead)."""
        assert self.transcoder is not None
        data = b"".join(self.transcoder.transcode(instance, transfer_syntax))
        return data[data_set_offset(data[:144]) :]

    def offset(self, instance: StoredInstance) -> int:
        return data_set_offset(self.blobs.get_range(instance.blob_key, 0, 144))

    def chunk(self, instance: StoredInstance, offset: int, size: int) -> bytes:
        """`size` bytes of the stored object from `offset` (fewer at the end)."""
        length = min(size, instance.size - offset)
        return self.blobs.get_range(instance.blob_key, offset, length) if length > 0 else b""

    def rewritten(self, instance: StoredInstance, transfer_syntax: str) -> bytes:
        """The data set re-encoded in implicit or explicit VR little endian (values unchanged)."""
        with tempfile.TemporaryDirectory(prefix="hounsfield-get-") as scratch:
            source, target = Path(scratch) / "in.dcm", Path(scratch) / "out.dcm"
            with source.open("wb") as fp:
                for piece in self.blobs.iter_bytes(instance.blob_key):
                    fp.write(piece)
            rewrite_little_endian(source, target, transfer_syntax)
            data = target.read_bytes()
        return data[data_set_offset(data[:144]) :]
