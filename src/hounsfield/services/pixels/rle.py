"""DICOM RLE Lossless (PS3.5 Annex G) over imagecodecs' PackBits.

A frame is a 64-byte header (the number of segments, then up to 15 segment offsets, little
endian) followed by segments. Each segment is one byte plane of one sample, PackBits-coded
(PS3.5 G.3.1, where -128 is a no-op): for each sample, the most significant byte first (G.2).
So a 16-bit RGB frame has 6 segments: R high, R low, G high, G low, B high, B low.
"""

from __future__ import annotations

import struct
from typing import Any

import imagecodecs
import numpy as np

from hounsfield.domain.errors import InvalidDicomError

_MAX_SEGMENTS = 15


def decode(data: bytes, rows: int, columns: int, samples: int, bits_allocated: int) -> bytes:
    """The frame's native little-endian bytes, samples interleaved (planar configuration 0)."""
    if len(data) < 64:
        raise InvalidDicomError("RLE frame shorter than its 64-byte header")
    header = struct.unpack("<16L", data[:64])
    count = header[0]
    width = max(bits_allocated // 8, 1)
    expected = samples * width
    if count != expected:
        raise InvalidDicomError(f"RLE frame has {count} segments, {expected} expected")
    offsets = [*header[1 : count + 1], len(data)]
    pixels = rows * columns
    planes = np.zeros((samples, width, pixels), dtype=np.uint8)
    for index in range(count):
        start, stop = offsets[index], offsets[index + 1]
        if not 64 <= start <= stop <= len(data):
            raise InvalidDicomError(f"RLE segment {index + 1} has an invalid offset")
        plane = np.frombuffer(imagecodecs.packbits_decode(data[start:stop]), dtype=np.uint8)
        sample, significance = divmod(index, width)
        n = min(len(plane), pixels)
        # Segments hold the most significant byte first; little endian puts it last.
        planes[sample, width - 1 - significance, :n] = plane[:n]
    # (sample, byte, pixel) -> (pixel, sample, byte): interleaved little-endian samples.
    return np.ascontiguousarray(planes.transpose(2, 0, 1)).tobytes()


def encode(array: np.ndarray[Any, Any]) -> bytes:
    """Encode one frame (rows, columns[, samples]) of unsigned or signed integers."""
    values = array if array.ndim == 3 else array[..., np.newaxis]
    samples = values.shape[2]
    width = values.dtype.itemsize
    if samples * width > _MAX_SEGMENTS:
        raise InvalidDicomError(f"RLE holds at most 15 segments, not {samples * width}")
    little = values.astype(values.dtype.newbyteorder("<"), copy=False)
    raw = little.view(np.uint8).reshape(values.shape[0] * values.shape[1], samples, width)
    segments: list[bytes] = []
    for sample in range(samples):
        for significance in range(width):
            plane = np.ascontiguousarray(raw[:, sample, width - 1 - significance])
            segment = bytes(imagecodecs.packbits_encode(plane))
            if len(segment) % 2:
                segment += b"\x00"  # G.3.1: segments are padded to an even length
            segments.append(segment)
    offsets = []
    position = 64
    for segment in segments:
        offsets.append(position)
        position += len(segment)
    header = struct.pack("<16L", len(segments), *offsets, *([0] * (15 - len(offsets))))
    return header + b"".join(segments)
