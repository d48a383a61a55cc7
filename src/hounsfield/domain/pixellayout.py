"""Frame boundaries inside a stored Pixel Data value, computed once at ingest.

A WADO-RS frame request (PS3.18 10.4.1.1.3) must then be one ranged read of the stored bytes.
Native pixel data (PS3.5 8.1.1) is a plain array, so frame i is one range. Encapsulated pixel
data (PS3.5 A.4) is a Basic Offset Table item followed by fragments; which fragments make up a
frame is decided, in order of precedence, by the Extended Offset Table (7FE0,0001/0002), the
Basic Offset Table, and, when both are absent, by the rules of PS3.5 A.4: one fragment per frame
when the counts agree, all fragments for a single-frame image, and otherwise by looking for the
JPEG/JPEG 2000 end-of-codestream marker (FFD9) at the end of fragments, as pydicom does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from struct import unpack

from hounsfield.domain.errors import InvalidDicomError
from hounsfield.domain.model import ByteRange

Frames = tuple[tuple[ByteRange, ...], ...]

#: More frames than this in one object is not an image but an attack on the frame index
#: (a whole-slide level of 1M tiles at 256x256 would be 200 GB in one instance).
MAX_FRAMES = 1 << 20

_EOI = b"\xff\xd9"


def native_frames(
    value_offset: int,
    value_length: int,
    rows: int,
    columns: int,
    samples_per_pixel: int,
    bits_allocated: int,
    number_of_frames: int,
) -> Frames:
    """Byte range of each frame of native pixel data (PS3.5 8.1.1, PS3.3 C.7.6.3).

    With Bits Allocated 1 and a frame size that is not a multiple of 8 bits, frames are packed
    bit-wise and do not start on byte boundaries (PS3.5 8.1.1, "bit-packed"): the range of
    frame i then covers every byte holding one of its bits, from byte floor(i*N/8) to byte
    ceil((i+1)*N/8), and the reader must drop the first (i*N mod 8) bits. Frames that do not
    fit entirely in the value (a value shorter than Number of Frames implies) are left out.
    """
    frame_bits = rows * columns * samples_per_pixel * bits_allocated
    if frame_bits <= 0:
        return ()
    check_frame_count(number_of_frames)
    frames: list[tuple[ByteRange, ...]] = []
    for i in range(max(number_of_frames, 1)):
        start = (i * frame_bits) // 8
        stop = -((-(i + 1) * frame_bits) // 8)
        if stop > value_length:
            break
        frames.append(((value_offset + start, stop - start),))
    return tuple(frames)


def check_frame_count(count: int) -> None:
    if count > MAX_FRAMES:
        raise InvalidDicomError(f"{count} frames: more than the {MAX_FRAMES} the archive indexes")


def parse_offsets(raw: bytes, size: int, little: bool) -> list[int]:
    """Decode a Basic (UL, size 4) or Extended (UV, size 8) Offset Table value."""
    n = len(raw) // size
    check_frame_count(n)
    code = "L" if size == 4 else "Q"
    return list(unpack(f"{'<' if little else '>'}{n}{code}", raw[: n * size]))


def encapsulated_frames(
    fragments: Sequence[ByteRange],
    basic_offsets: Sequence[int],
    extended: tuple[Sequence[int], Sequence[int]] | None,
    number_of_frames: int,
    read_tail: Callable[[int, int], bytes],
) -> Frames:
    """Group the fragments after the Basic Offset Table item into frames (PS3.5 A.4).

    `fragments` are (offset of the fragment's data, length) in stored order, not including the
    Basic Offset Table. Offsets in both tables count from the first byte of the first
    fragment's Item tag, so fragment j starts at sum(length_k + 8 for k < j) in that frame of
    reference. `read_tail(offset, n)` returns n bytes from the stored object; it is used only
    for the end-of-codestream search, which reads 10 bytes per fragment.
    """
    if not fragments:
        return ()
    if extended is not None:
        return _extended_frames(fragments, extended)
    if basic_offsets:
        return _basic_frames(fragments, basic_offsets)
    if len(fragments) == 1:
        return ((fragments[0],),)
    if len(fragments) == number_of_frames:
        return tuple((fragment,) for fragment in fragments)
    if number_of_frames <= 1:
        return (tuple(fragments),)
    if len(fragments) > number_of_frames:
        return _frames_by_eoi(fragments, read_tail)
    # Fewer fragments than frames: the header is inconsistent; a fragment per frame is the
    # only grouping that does not merge data of different frames.
    return tuple((fragment,) for fragment in fragments)


def _extended_frames(
    fragments: Sequence[ByteRange], extended: tuple[Sequence[int], Sequence[int]]
) -> Frames:
    """PS3.5 A.4, Extended Offset Table: each frame lies in one fragment whose Item tag
    starts at the given offset; the frame length may be shorter than the (even) fragment."""
    first_item = fragments[0][0] - 8
    end = fragments[-1][0] + fragments[-1][1]
    frames: list[tuple[ByteRange, ...]] = []
    for offset, length in zip(*extended, strict=False):
        start = first_item + offset + 8
        if start + length > end:
            break
        frames.append(((start, length),))
    return tuple(frames)


def _basic_frames(fragments: Sequence[ByteRange], offsets: Sequence[int]) -> Frames:
    """PS3.5 A.4, Basic Offset Table: frame k holds the fragments from offset k up to the next
    frame's offset (the same walk as pydicom's `generate_fragmented_frames`)."""
    frames: list[tuple[ByteRange, ...]] = []
    frame: list[ByteRange] = []
    index = 0
    final = len(offsets) - 1
    current = 0
    for fragment in fragments:
        if index == final or current < offsets[index + 1]:
            frame.append(fragment)
        else:
            frames.append(tuple(frame))
            index += 1
            frame = [fragment]
        current += fragment[1] + 8
    frames.append(tuple(frame))
    return tuple(frames)


def _frames_by_eoi(
    fragments: Sequence[ByteRange], read_tail: Callable[[int, int], bytes]
) -> Frames:
    """No offset table and more fragments than frames: a frame ends with the fragment whose
    last 10 bytes hold the JPEG EOI / JPEG 2000 EOC marker FFD9 (PS3.5 A.4.1, A.4.4)."""
    frames: list[tuple[ByteRange, ...]] = []
    frame: list[ByteRange] = []
    for offset, length in fragments:
        frame.append((offset, length))
        tail = min(length, 10)
        if tail >= 2 and _EOI in read_tail(offset + length - tail, tail):
            frames.append(tuple(frame))
            frame = []
    if frame:
        frames.append(tuple(frame))
    return tuple(frames)
