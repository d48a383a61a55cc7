"""Write an instance in another transfer syntax, one frame at a time (PS3.5 8.2, A.4).

The header is re-encoded by pydicom; the Pixel Data element is written by hand so that frames
stream: encapsulated syntaxes get an empty Basic Offset Table and one fragment per frame (PS3.5
A.4), native syntaxes a defined-length value whose size is known from the header. What changes
with the syntax is changed (PS3.5 8.2; PS3.3 C.7.6.3 Photometric Interpretation and Planar
Configuration; the Extended Offset Table, which described the old fragments, is dropped), and
what must never change is kept: the SOP Instance UID (a change of transfer syntax is not a new
instance), and Lossy Image Compression, which once "01" stays "01" (PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID

from hounsfield.domain.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from hounsfield.services.pixels import codec
from hounsfield.services.pixels.codec import CodecError, Decoded
from hounsfield.services.pixels.image import ImageInfo
from hounsfield.services.pixels.syntaxes import SYNTAXES

_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_PIXEL_TAG = b"\xe0\x7f\x10\x00"


def check_target(info: ImageInfo, target: str) -> None:
    """Raise CodecError when `target` cannot hold this image (the caller answers 406)."""
    found = SYNTAXES.get(target)
    if found is None or not found.encodable:
        raise CodecError(f"the archive does not write transfer syntax {target}")
    if info.transfer_syntax not in SYNTAXES:
        raise CodecError(f"frames in {info.transfer_syntax} cannot be decoded")
    if found.encapsulated and info.bits_allocated == 1:
        raise CodecError("1-bit images are only written in native transfer syntaxes")
    if found.encapsulated and info.bits_allocated > 16 and target != "1.2.840.10008.1.2.5":
        raise CodecError(f"{found.name} is not written for {info.bits_allocated}-bit samples")


def lossy_attributes(header: Dataset, info: ImageInfo, compressed_bytes: int) -> None:
    """PS3.3 C.7.6.1.1.5: an image that was stored lossy-compressed keeps that history when it
    is decompressed or re-encoded: Lossy Image Compression "01" with the method and ratio of
    the compression it went through, appended to any earlier ones."""
    source = SYNTAXES.get(info.transfer_syntax)
    if source is None or not source.lossy:
        return
    header.LossyImageCompression = "01"
    methods = _strings(header.get("LossyImageCompressionMethod"))
    ratios = _strings(header.get("LossyImageCompressionRatio"))
    if source.method in methods:
        return  # the stored object already records the compression it went through
    uncompressed = info.rows * info.columns * info.samples * info.bits_allocated // 8
    ratio = (uncompressed * info.frames) / max(compressed_bytes, 1)
    header.LossyImageCompressionMethod = [*methods, source.method or ""]
    header.LossyImageCompressionRatio = [*ratios, f"{ratio:.2f}"[:16]]


def _strings(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str | int | float):
        return [str(value)]
    return [str(v) for v in value]  # type: ignore[attr-defined]


def rewrite_header(
    header: Dataset, info: ImageInfo | None, photometric: str | None, target: str
) -> bytes:
    """The PS3.10 file up to (not including) the Pixel Data element, in `target` (with no
    `info`, a data set without pixel data, whole)."""
    out = Dataset()
    out.update(header)
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths", "PixelData"):
        if keyword in out:
            del out[keyword]
    if photometric is not None:
        out.PhotometricInterpretation = photometric
    if info is not None and info.samples > 1:
        out.PlanarConfiguration = 0
    meta = FileMetaDataset()
    old_meta = getattr(header, "file_meta", None) or FileMetaDataset()
    meta.MediaStorageSOPClassUID = old_meta.get(
        "MediaStorageSOPClassUID", header.get("SOPClassUID", "")
    )
    meta.MediaStorageSOPInstanceUID = old_meta.get(
        "MediaStorageSOPInstanceUID", header.get("SOPInstanceUID", "")
    )
    meta.TransferSyntaxUID = UID(target)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if "SourceApplicationEntityTitle" in old_meta:
        meta.SourceApplicationEntityTitle = old_meta.SourceApplicationEntityTitle
    out.file_meta = meta
    out.preamble = b"\x00" * 128
    buffer = BytesIO()
    with warnings.catch_warnings():
        # Values are written as they were stored; pydicom's complaints about them (a UID
        # component with a leading zero...) are not this function's to fix.
        warnings.simplefilter("ignore")
        dcmwrite(buffer, out, enforce_file_format=True)
    return buffer.getvalue()


def _native_element(info: ImageInfo, target: str, count: int) -> tuple[bytes, int]:
    bits = info.rows * info.columns * info.samples * info.bits_allocated * count
    length = -(-bits // 8)
    padded = length + length % 2
    if SYNTAXES[target].implicit_vr:
        return _PIXEL_TAG + struct.pack("<L", padded), padded - length
    vr = b"OW" if info.bits_allocated > 8 else b"OB"
    return _PIXEL_TAG + vr + b"\x00\x00" + struct.pack("<L", padded), padded - length


def stream(
    header: Dataset,
    info: ImageInfo,
    frames: Iterator[Decoded],
    target: str,
    count: int,
    compressed_bytes: int,
) -> Iterator[bytes]:
    """The whole object in `target`: header, then Pixel Data frame by frame. `frames` yields
    the `count` decoded frames in order; `compressed_bytes` is the stored size of the frames
    (for the Lossy Image Compression Ratio when a lossy source is decompressed)."""
    check_target(info, target)
    first = next(frames, None)
    if first is None:
        raise CodecError("the instance has no frames")
    photometric = codec.output_photometric(first.photometric, info.samples, target)
    rewritten = Dataset()
    rewritten.update(header)
    rewritten.file_meta = getattr(header, "file_meta", FileMetaDataset())
    lossy_attributes(rewritten, info, compressed_bytes)
    yield rewrite_header(rewritten, info, photometric, target)
    if not SYNTAXES[target].encapsulated:
        element, pad = _native_element(info, target, count)
        yield element
        if info.bits_allocated == 1:
            bits = [first.array.reshape(-1)] + [f.array.reshape(-1) for f in frames]
            yield np.packbits(np.concatenate(bits), bitorder="little").tobytes()
        else:
            yield codec.encode(first, info, target)
            for decoded in frames:
                yield codec.encode(decoded, info, target)
        yield b"\x00" * pad
        return
    yield _PIXEL_TAG + b"OB\x00\x00\xff\xff\xff\xff" + _ITEM + b"\x00\x00\x00\x00"
    for decoded in _chain(first, frames):
        data = codec.encode(decoded, info, target)
        if len(data) % 2:
            data += b"\x00"
        yield _ITEM + struct.pack("<L", len(data)) + data
    yield _SEQUENCE_DELIMITER


def _chain(first: Decoded, rest: Iterator[Decoded]) -> Iterator[Decoded]:
    yield first
    yield from rest


def encode_frame(decoded: Decoded, info: ImageInfo, target: str) -> bytes:
    """One frame for a WADO-RS frames response in `target` (PS3.18 8.7.3.3.2): native frames
    are little endian bytes; 1-bit frames are packed on their own."""
    check_target(info, target)
    if info.bits_allocated == 1:
        return np.packbits(decoded.array.reshape(-1), bitorder="little").tobytes()
    return codec.encode(decoded, info, target)


def array_bytes(array: np.ndarray[Any, Any]) -> bytes:
    return np.ascontiguousarray(array).tobytes()
