"""A streaming multipart/related parser (RFC 2387, RFC 2046 5.1) and writer.

STOW-RS bodies can be many gigabytes, so parts are delivered as a sequence of events while the
body arrives, and never held in memory whole (DESIGN.md §5, bounded memory).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from hounsfield.frontends.http.core import HttpError

_MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class PartStart:
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


class MultipartParser:
    """Feed chunks, get events. `close()` checks that the closing delimiter was seen."""

    def __init__(self, boundary: str) -> None:
        if not boundary or len(boundary) > 200:
            raise HttpError(400, "multipart boundary missing or longer than 70 characters")
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = bytearray(b"\r\n")  # so that the first delimiter needs no special case
        self._state = "preamble"
        self._done = False

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._buffer += chunk
        while True:
            if self._state == "preamble":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    keep = len(self._delimiter) + 2
                    if len(self._buffer) > keep:
                        del self._buffer[: len(self._buffer) - keep]
                    return
                del self._buffer[: at + len(self._delimiter)]
                self._state = "after-delimiter"
            elif self._state == "after-delimiter":
                if len(self._buffer) < 2:
                    return
                if self._buffer[:2] == b"--":
                    self._state = "epilogue"
                    self._done = True
                    self._buffer.clear()
                    return
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    if len(self._buffer) > 1024:
                        raise HttpError(400, "malformed multipart delimiter line")
                    return
                del self._buffer[: end + 2]  # transport padding after the boundary
                self._state = "headers"
            elif self._state == "headers":
                end = self._buffer.find(b"\r\n\r\n")
                if self._buffer[:2] == b"\r\n":
                    headers: dict[str, str] = {}
                    del self._buffer[:2]
                elif end < 0 or end > _MAX_HEADER_BYTES:
                    # The limit holds however the body is chunked, complete headers included.
                    if end > _MAX_HEADER_BYTES or len(self._buffer) > _MAX_HEADER_BYTES:
                        raise HttpError(400, "multipart part headers too large")
                    return
                else:
                    headers = _parse_headers(bytes(self._buffer[:end]))
                    del self._buffer[: end + 4]
                self._state = "body"
                yield PartStart(headers)
            elif self._state == "body":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    safe = len(self._buffer) - len(self._delimiter)
                    if safe > 0:
                        yield PartData(bytes(self._buffer[:safe]))
                        del self._buffer[:safe]
                    return
                if at:
                    yield PartData(bytes(self._buffer[:at]))
                del self._buffer[: at + len(self._delimiter)]
                yield PartEnd()
                self._state = "after-delimiter"
            else:  # epilogue: ignore everything
                self._buffer.clear()
                return

    def close(self) -> None:
        if not self._done:
            raise HttpError(400, "multipart body ended before its closing delimiter")


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(400, f"malformed multipart part header {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def new_boundary() -> str:
    return os.urandom(16).hex()


def part_header(boundary: str, content_type: str, extra: str = "") -> bytes:
    return f"--{boundary}\r\nContent-Type: {content_type}\r\n{extra}\r\n".encode("latin-1")


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")
