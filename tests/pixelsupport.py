"""An in-process archive over the real SQLite index and file blob store, holding pydicom's
bundled test files (each in its own partition: several share a SOP Instance UID), for the
pixel services' golden and round-trip tests."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from hounsfield.adapters.blobs.file import FileBlobStore
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.ports.index import StoredInstance
from hounsfield.services.ingest import IngestService, Outcome
from hounsfield.services.pixels.service import PixelService
from hounsfield.services.retrieve import RetrieveService
from hounsfield.services.staging import StagingArea

#: Every pydicom test file with pixel data that is on disk without a download: each transfer
#: syntax the archive reads, and MONOCHROME1/2, RGB, YBR_FULL, YBR_FULL_422, YBR_RCT, PALETTE
#: COLOR, planar configuration 0 and 1, signed and unsigned, 1 to 32 bits, multi-frame.
CORPUS = (
    "693_J2KI.dcm",
    "CT_small.dcm",
    "ExplVR_BigEnd.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG-lossy.dcm",
    "JPEG2000.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "JPEGLSNearLossless_08.dcm",
    "JPEGLSNearLossless_16.dcm",
    "JPGExtended.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jls_lossy_line.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_jpeg2k.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "liver_expb_1frame.dcm",
    "rtdose.dcm",
    "rtdose_expb.dcm",
    "rtdose_rle.dcm",
)


def corpus_path(name: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Path(str(get_testdata_file(name)))


def corpus_bytes(name: str) -> bytes:
    """The file as shipped, or, for the few without Study/Series Instance UIDs (which the
    archive requires), with deterministic ones added and the pixel data left as it is."""
    data = corpus_path(name).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(data), force=True)
        if "StudyInstanceUID" in ds and "SeriesInstanceUID" in ds:
            return data
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[name, "study"])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[name, "series"])
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@dataclass
class PixelArchive:
    index: SqliteIndex
    pixels: PixelService
    instances: dict[str, StoredInstance]


@contextmanager
def pixel_archive(root: Path, names: tuple[str, ...] = CORPUS) -> Iterator[PixelArchive]:
    index = SqliteIndex(root / "index.db", durable=False)
    index.migrate()
    blobs = FileBlobStore(root / "blobs")
    staging = StagingArea(root / "staging")
    ingest = IngestService(index, blobs, staging, durable=False)
    instances: dict[str, StoredInstance] = {}
    try:
        for number, name in enumerate(names):
            partition = f"p{number}"
            staged = staging.stage_bytes(corpus_bytes(name))
            (result,) = ingest.ingest_files([staged], partition)
            assert result.outcome is Outcome.STORED, (name, result)
            (stored,) = [i for i in index.all_instances() if i.partition == partition]
            instances[name] = stored
        yield PixelArchive(index, PixelService(RetrieveService(index, blobs)), instances)
    finally:
        index.close()


def digest(arrays: list[np.ndarray[Any, Any]]) -> str:
    """SHA-256 of the frames' values as little-endian bytes (independent of the host)."""
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    return sha.hexdigest()


def split_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The parts of a multipart/related response as (Content-Type, payload) (RFC 2046 5.1)."""
    boundary = next(
        p.split("=", 1)[1].strip('"')
        for p in content_type.split(";")
        if p.strip().startswith("boundary=")
    ).encode()
    parts: list[tuple[str, bytes]] = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, payload = chunk.partition(b"\r\n\r\n")
        part_type = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                part_type = value.strip()
        parts.append((part_type, payload[:-2] if payload.endswith(b"\r\n") else payload))
    return parts


def decode_file(data: bytes) -> tuple[str, list[np.ndarray[Any, Any]]]:
    """A PS3.10 file's transfer syntax and frames, decoded by the archive's codecs."""
    from pydicom.encaps import generate_frames

    from hounsfield.services.pixels import codec
    from hounsfield.services.pixels.image import image_info
    from hounsfield.services.pixels.syntaxes import SYNTAXES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(data), force=True)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    info = image_info(ds, syntax, syntax != "1.2.840.10008.1.2.2")
    if SYNTAXES[syntax].encapsulated:
        raw = list(generate_frames(ds.PixelData, number_of_frames=info.frames))
    elif info.bits_allocated == 1:
        raw = [ds.PixelData] * info.frames
    else:
        size = info.frame_size
        raw = [ds.PixelData[i * size : (i + 1) * size] for i in range(info.frames)]
    return syntax, [codec.decode(info, frame, i).array for i, frame in enumerate(raw)]
