"""The archive's vocabulary: query/retrieve levels and what one header walk yields.

A stored object is described by a `ParsedInstance`, produced once at ingest by the byte-level
walker (`domain.dicomwalk`). Everything later (index rows, metadata documents, frame reads) is
derived from it, so the stored bytes never need to be parsed again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

#: DICOM JSON model (PS3.18 F.2): {"GGGGEEEE": {"vr": "XX", "Value": [...]}, ...}
DicomJson = dict[str, dict[str, Any]]

#: Byte range in a stored object: (offset from the start of the file, length in bytes).
ByteRange = tuple[int, int]


class Level(enum.Enum):
    """Query/Retrieve levels of the information models in PS3.4 C.6.1 and C.6.2."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """Where the Pixel Data value (7FE0,0010) and each of its frames lie in the stored bytes.

    For native (uncompressed) pixel data a frame is one contiguous range. For encapsulated
    syntaxes (PS3.5 A.4) a frame is one or more fragments; the basic or extended offset table
    decides which fragments belong to which frame, and when neither exists and there are as many
    fragments as frames, fragment i is frame i, else all fragments form one frame.
    """

    value_offset: int
    value_length: int  # -1 for undefined length (encapsulated)
    encapsulated: bool
    frames: tuple[tuple[ByteRange, ...], ...]


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    """Everything the archive needs from one object, from a single walk of its bytes.

    `dataset_json` is the DICOM JSON of the data set (not the File Meta Information), with
    values longer than the bulk data threshold replaced by `BulkDataURI` entries relative to the
    instance URL ("bulkdata/GGGGEEEE" or, inside sequences, "bulkdata/GGGGEEEE/i/GGGGEEEE").
    `bulk_ranges` maps those same relative paths to where the value lies in the stored bytes.
    """

    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    dataset_offset: int
    dataset_json: DicomJson
    bulk_ranges: dict[str, ByteRange] = field(default_factory=dict)
    pixel: PixelLayout | None = None
    specific_character_set: tuple[str, ...] = ()
    has_file_meta: bool = True
