"""The walker against pydicom on every file pydicom ships for its own tests.

For each file: the DICOM JSON must equal pydicom's `to_json_dict` (same threshold, a handler
returning the same relative BulkDataURI), every BulkDataURI's byte range must hold exactly the
value pydicom read, the UIDs must match, and every frame's bytes must equal what pydicom
finds (a slice of the native value, or `generate_fragmented_frames` for encapsulated data).
Files that are not DICOM or are cut short must be rejected with `InvalidDicomError`.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragmented_frames

from hounsfield.domain.dicomwalk import walk
from hounsfield.domain.errors import InvalidDicomError

DATA = Path(pydicom.__file__).parent / "data"
CORPUS = sorted(
    str(p.relative_to(DATA))
    for folder in ("test_files", "charset_files", "palettes")
    for p in (DATA / folder).rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".py", ".pyc"}
)

#: Not DICOM at all: the walker must say so.
NOT_DICOM = {
    "test_files/README.txt": "text",
    "test_files/crayons.icc": "an ICC colour profile",
    "test_files/rtplan.dump": "text dump of rtplan.dcm",
    "test_files/rtstruct.dump": "text dump of rtstruct.dcm",
    "test_files/test1.json": "DICOM JSON, not PS3.10",
    "test_files/test_PN.json": "DICOM JSON, not PS3.10",
    "test_files/zipMR.gz": "gzip archive",
    "test_files/dicomdirtests/README.txt": "text",
    "test_files/dicomdirtests/TINY_ALPHA/README": "text",
    "test_files/no_meta.dcm": "a data set shifted by one stray leading byte: pydicom reads garbage",
    "charset_files/FileInfo.txt": "text",
    "palettes/README.md": "text",
}
#: Deliberately cut short: pydicom keeps what it could read, the walker refuses.
TRUNCATED = {
    "test_files/MR_truncated.dcm": "Pixel Data length 8192 runs past the end of the file",
    "test_files/rtplan_truncated.dcm": "a value in the last item runs past the end",
    "test_files/dicomdirtests/DICOMDIR-nooffset": "last directory record item runs past the end",
}
#: pydicom's own to_json_dict raises on these elements; the walker answers for them instead.
PYDICOM_JSON_FAILS = {
    # Number of Frames (IS) is "1A": pydicom raises, the walker keeps the string.
    "test_files/badVR.dcm": {"00280008": {"vr": "IS", "Value": ["1A"]}},
}


UID_FIELDS = (
    ("SOPClassUID", "sop_class_uid"),
    ("SOPInstanceUID", "sop_instance_uid"),
    ("SeriesInstanceUID", "series_instance_uid"),
    ("StudyInstanceUID", "study_instance_uid"),
)


def bulk_paths(ds: Dataset, prefix: str = "bulkdata/") -> dict[int, str]:
    """Map each element object to the relative BulkDataURI the archive gives it."""
    paths: dict[int, str] = {}
    for elem in ds:
        paths[id(elem)] = f"{prefix}{elem.tag:08X}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                paths.update(bulk_paths(item, f"{prefix}{elem.tag:08X}/{i}/"))
    return paths


def reference_json(ds: Dataset, threshold: int, suppress: bool = False) -> dict[str, Any]:
    paths = bulk_paths(ds)

    def handler(elem: DataElement) -> str:
        return paths[id(elem)]

    return ds.to_json_dict(threshold, handler, suppress_invalid_tags=suppress)  # type: ignore[no-any-return]


def normalized(value: Any) -> Any:
    """NaN != NaN; compare it by name."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def element_at(ds: Dataset, uri: str) -> DataElement:
    parts = uri.split("/")[1:]
    current = ds
    while len(parts) > 1:
        current = current[int(parts[0], 16)].value[int(parts[1])]
        parts = parts[2:]
    return current[int(parts[0], 16)]


def read_reference(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about invalid values in some files
        ds = pydicom.dcmread(path, force=True)
        for elem in ds.iterall():  # convert every raw element while warnings are ignored
            _ = elem.value
    return ds


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file(name: str) -> None:
    path = DATA / name
    if name in NOT_DICOM or name in TRUNCATED:
        with path.open("rb") as fp, pytest.raises(InvalidDicomError):
            walk(fp, require_uids=False)
        return
    with path.open("rb") as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom.charset warns on undecodable text
        parsed = walk(fp, require_uids=False, bulk_threshold=1024)
    ds = read_reference(path)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answers = PYDICOM_JSON_FAILS.get(name, {})
        expected = reference_json(ds, 1024, suppress=bool(answers)) | answers
    actual = parsed.dataset_json
    assert normalized(actual) == normalized(expected)

    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None:
        assert parsed.transfer_syntax_uid == syntax
    assert parsed.has_file_meta == bool(ds.file_meta)
    for keyword, field in UID_FIELDS:
        value = ds.get(keyword)
        if isinstance(value, str) and value:
            assert getattr(parsed, field) == value

    check_bulk_ranges(path, ds, parsed.dataset_json, parsed.bulk_ranges, parsed.transfer_syntax_uid)
    check_pixel_layout(path, ds, parsed)


def check_bulk_ranges(
    path: Path, ds: Dataset, js: dict[str, Any], ranges: dict[str, tuple[int, int]], syntax: str
) -> None:
    uris = set(collect_uris(js))
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        assert ranges == {}
        return
    assert set(ranges) == uris
    data = path.read_bytes()
    for uri, (offset, length) in ranges.items():
        assert data[offset : offset + length] == element_at(ds, uri).value, uri


def collect_uris(js: dict[str, Any]) -> list[str]:
    uris: list[str] = []
    for element in js.values():
        if "BulkDataURI" in element:
            uris.append(element["BulkDataURI"])
        if element["vr"] == "SQ":
            for item in element.get("Value", []):
                uris.extend(collect_uris(item))
    return uris


def check_pixel_layout(path: Path, ds: Dataset, parsed: Any) -> None:
    pixel = parsed.pixel
    has_pixels = any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009))
    if parsed.transfer_syntax_uid == pydicom.uid.DeflatedExplicitVRLittleEndian:
        assert pixel is None
        return
    assert (pixel is not None) == has_pixels
    if pixel is None:
        return
    data = path.read_bytes()
    value = ds[0x7FE00010].value if 0x7FE00010 in ds else b""
    if not pixel.encapsulated:
        assert pixel.value_length == len(value)
        for frame in pixel.frames:
            ((offset, length),) = frame
            start = offset - pixel.value_offset
            assert data[offset : offset + length] == value[start : start + length]
        return
    try:
        frames_count = int(ds.get("NumberOfFrames") or 1)
    except ValueError:
        frames_count = 1
    kwargs: dict[str, Any] = {}
    if "ExtendedOffsetTable" in ds:
        kwargs["extended_offsets"] = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [
            b"".join(fr)
            for fr in generate_fragmented_frames(value, number_of_frames=frames_count, **kwargs)
        ]
    actual = [b"".join(data[o : o + n] for o, n in frame) for frame in pixel.frames]
    assert actual == expected
