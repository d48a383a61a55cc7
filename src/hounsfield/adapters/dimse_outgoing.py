"""The data set of an object to C-STORE, read once from its PS3.10 bytes (a file or a blob).

A C-STORE-RQ carries the data set only: the File Meta Information (PS3.10 7.1) stays behind,
and what follows it goes on the wire as stored (DESIGN.md key idea 1). `open_data_set` reads
the head of the object, checks it is a PS3.10 file in the transfer syntax it is announced in,
and returns a `DataSetSource` positioned on the first data set byte. All of that happens before
the first PDU is sent, so an object that cannot be sent fails alone and the association stays
usable.

The source reads ahead by one chunk so that the sender knows, when it fills a fragment, whether
it is the last one (the PDV's "last fragment" bit, PS3.8 E.2), without knowing the size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hounsfield.domain.dicomsource import WalkState, read_file_meta
from hounsfield.domain.errors import InvalidDicomError
from hounsfield.ports.dicom_network import OutgoingObject

#: Bytes read to find the end of the File Meta Information; a few hundred are usual.
HEAD = 64 * 1024
#: Chunk size when reading a local file.
FILE_CHUNK = 1 << 20
_TRANSFER_SYNTAX = 0x00020010


class DataSetSource:
    """Bytes from an iterator of chunks, copied into the caller's buffers."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending: list[memoryview] = []
        self._current = memoryview(b"")

    def _fill(self) -> bool:
        while not self._current:
            if self._pending:
                self._current = self._pending.pop()
                continue
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._current = memoryview(chunk)
        return True

    def readinto(self, target: memoryview) -> int:
        """Fill `target`; fewer bytes only at the end of the object."""
        got = 0
        size = len(target)
        while got < size and self._fill():
            n = min(size - got, len(self._current))
            target[got : got + n] = self._current[:n]
            self._current = self._current[n:]
            got += n
        return got

    def at_end(self) -> bool:
        return not self._fill()

    def unread(self, data: bytes | memoryview) -> None:
        """Put bytes back in front of what is left."""
        if data:
            self._pending.append(self._current)
            self._current = memoryview(data)

    def close(self) -> None:
        """Release the underlying file or blob reader (a generator's `finally`)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fp:
        while chunk := fp.read(FILE_CHUNK):
            yield chunk


def open_data_set(item: OutgoingObject) -> DataSetSource:
    """The source of `item`'s data set, after its File Meta Information has been read and
    checked. Raises ValueError (not PS3.10, another transfer syntax, no data set) and the
    reader's own errors (a missing file) before anything is sent."""
    if item.path is not None:
        source = DataSetSource(_file_chunks(item.path))
        what = str(item.path)
    else:
        assert item.chunks is not None
        source = DataSetSource(item.chunks())
        what = f"object {item.sop_instance_uid}"
    try:
        head = bytearray(HEAD)
        got = source.readinto(memoryview(head))
        if got < 132 or head[128:132] != b"DICM":
            raise ValueError(f"{what} is not a PS3.10 file (no DICM prefix)")
        try:
            meta, start = read_file_meta(WalkState(None, got, bytes(head[:got]), 0), 132)
        except InvalidDicomError as exc:
            raise ValueError(f"{what}: {exc}") from exc
        if start >= got and not source.at_end():
            raise ValueError(f"{what}: File Meta Information longer than {HEAD} bytes")
        syntax = meta.get(_TRANSFER_SYNTAX, b"").decode("ascii", "replace").rstrip("\x00 ")
        if syntax != item.transfer_syntax_uid:
            raise ValueError(
                f"{what} is encoded in {syntax or 'no transfer syntax'},"
                f" not {item.transfer_syntax_uid}"
            )
        source.unread(memoryview(head)[start:got])
        if source.at_end():
            raise ValueError(f"{what} has no data set after its File Meta Information")
    except BaseException:
        source.close()
        raise
    return source
