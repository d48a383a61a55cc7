"""Where the walker's bytes come from: a seekable file read through one window.

Separated from the element loop (`domain.dicomreader`) because it is where the promises of
DESIGN section 6 about bad input are kept: every read is checked against the size known from
seek(0, 2) before anything is read or allocated, and the File Meta Information (PS3.10 7.1) is
read here, before the data set's encoding is known.
"""

from __future__ import annotations

from struct import Struct
from typing import BinaryIO

from hounsfield.domain import dicomvr as vrs
from hounsfield.domain.errors import InvalidDicomError

UNDEFINED = 0xFFFFFFFF
READ_CHUNK = 64 * 1024

_LE = Struct("<HHL")
_UL_LE = Struct("<L")


class WalkState:
    """The bytes being walked: a seekable file, read through one window of up to 64 KiB.

    Every access is checked against the size known from seek(0, 2) before anything is read,
    so a bogus length can neither allocate memory nor read past the end (DESIGN section 6).
    """

    __slots__ = ("base", "buf", "fp", "size", "threshold")

    def __init__(self, fp: BinaryIO | None, size: int, buf: bytes, threshold: int) -> None:
        self.fp = fp
        self.size = size
        self.buf = buf
        self.base = 0
        self.threshold = threshold

    @classmethod
    def open(cls, fp: BinaryIO, threshold: int) -> WalkState:
        size = fp.seek(0, 2)
        if size == 0:
            raise InvalidDicomError("not DICOM: the file is empty (0 bytes)")
        return cls(fp, size, b"", threshold)

    def inflated(self, data: bytes) -> WalkState:
        """A state over an in-memory data set (a deflated one, PS3.5 A.5, once inflated)."""
        return WalkState(None, len(data), data, self.threshold)

    def truncated(self, pos: int, n: int) -> InvalidDicomError:
        return InvalidDicomError(
            f"truncated: {n} bytes needed at offset {pos} but the data ends at {self.size}"
        )

    def window(self, pos: int, n: int, chunk: int = READ_CHUNK) -> int:
        """Make bytes [pos, pos + n) resident in `buf`; return their offset in it."""
        off = pos - self.base
        if off >= 0 and off + n <= len(self.buf):
            return off
        if pos < 0 or pos + n > self.size or self.fp is None:
            raise self.truncated(pos, n)
        data = self._pread(self.fp, pos, max(n, min(chunk, self.size - pos)), n)
        self.buf = data
        self.base = pos
        return 0

    def read(self, pos: int, n: int) -> bytes:
        if n <= READ_CHUNK:
            off = self.window(pos, n)
            return self.buf[off : off + n]
        if pos < 0 or pos + n > self.size:
            raise self.truncated(pos, n)
        if self.fp is None:
            return self.buf[pos : pos + n]
        return self._pread(self.fp, pos, n, n)

    def _pread(self, fp: BinaryIO, pos: int, want: int, need: int) -> bytes:
        """Read `want` bytes at `pos`, accepting short reads (raw files, pipes) until `need`."""
        fp.seek(pos)
        data = fp.read(want)
        while len(data) < need:
            more = fp.read(want - len(data))
            if not more:
                raise InvalidDicomError(
                    f"read failed at offset {pos + len(data)}: the file is shorter than "
                    f"the {self.size} bytes it had when the walk started"
                )
            data += more
        return data

    def find(self, pattern: bytes, start: int) -> int:
        """Offset of the first `pattern` at or after `start`, or -1; reads 1 MiB at a time."""
        step = 1 << 20
        pos = start
        while pos < self.size:
            n = min(step, self.size - pos)
            chunk = self.read(pos, n)
            index = chunk.find(pattern)
            if index >= 0:
                return pos + index
            if pos + n >= self.size:
                break
            pos += n - (len(pattern) - 1)
        return -1


def read_file_meta(state: WalkState, pos: int) -> tuple[dict[int, bytes], int]:
    """File Meta Information (PS3.10 7.1): group 0002 elements in explicit VR little endian.

    Returns {tag: value} (values over 1 KiB are not kept) and the offset after the group.
    """
    meta: dict[int, bytes] = {}
    while state.size - pos >= 8:
        off = state.window(pos, 8)
        group, element, word = _LE.unpack_from(state.buf, off)
        if group != 0x0002:
            break
        vrb = state.buf[off + 4 : off + 6]
        if vrb in vrs.LONG_VR_NAMES:
            off = state.window(pos, 12)
            length = _UL_LE.unpack_from(state.buf, off + 8)[0]
            vpos = pos + 12
        elif vrs.is_uppercase_vr(vrb[0], vrb[1]):
            length = word >> 16
            vpos = pos + 8
        else:
            length = word
            vpos = pos + 8
        tag = group << 16 | element
        if length == UNDEFINED or vpos + length > state.size:
            raise InvalidDicomError(
                f"File Meta Information element ({group:04X},{element:04X}) at offset {pos}: "
                f"value length {length:#x} runs past the end of the file ({state.size} bytes)"
            )
        meta[tag] = state.read(vpos, length) if length <= 1024 else b""
        pos = vpos + length
    return meta, pos
