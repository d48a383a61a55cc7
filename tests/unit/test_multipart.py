"""The streaming multipart/related parser (RFC 2046 5.1, RFC 2387) and its writer helpers."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hounsfield.frontends.http.core import HttpError
from hounsfield.frontends.http.multipart import (
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    closing,
    new_boundary,
    part_header,
)

PROPERTY = settings(max_examples=200, deadline=None)
BOUNDARY = "XbOuNdArY"

Part = tuple[dict[str, str], bytes]


def encode(
    parts: Sequence[tuple[Sequence[tuple[str, str]], bytes]],
    boundary: str = BOUNDARY,
    *,
    preamble: bytes = b"",
    epilogue: bytes = b"",
    padding: bytes = b"",
) -> bytes:
    """A multipart body as RFC 2046 5.1.1 writes it; `padding` is transport padding (LWSP)."""
    out = bytearray()
    if preamble:
        out += preamble + b"\r\n"
    for headers, data in parts:
        out += b"--" + boundary.encode() + padding + b"\r\n"
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode("latin-1")
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--" + padding
    if epilogue:
        out += b"\r\n" + epilogue
    return bytes(out)


def collect(parser: MultipartParser, chunks: Iterable[bytes]) -> list[Part]:
    """Run the parser over the chunks and rebuild the parts, checking the event grammar
    (PartStart PartData* PartEnd)*, and that the closing delimiter was seen."""
    parts: list[Part] = []
    current: tuple[dict[str, str], bytearray] | None = None
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, PartStart):
                assert current is None, "PartStart inside a part"
                current = (event.headers, bytearray())
            elif isinstance(event, PartData):
                assert current is not None, "PartData outside a part"
                assert event.data, "empty PartData event"
                current[1].extend(event.data)
            else:
                assert isinstance(event, PartEnd)
                assert current is not None, "PartEnd outside a part"
                parts.append((current[0], bytes(current[1])))
                current = None
    parser.close()
    assert current is None
    return parts


def parse(body: bytes, boundary: str = BOUNDARY, chunk_size: int | None = None) -> list[Part]:
    size = chunk_size or max(len(body), 1)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return collect(MultipartParser(boundary), chunks)


def parse_every_way(body: bytes, boundary: str = BOUNDARY) -> list[Part]:
    """Parse whole, and in chunks of 1, 2, 3, 7 and 64 bytes; every way must agree."""
    whole = parse(body, boundary)
    for size in (1, 2, 3, 7, 64):
        assert parse(body, boundary, size) == whole, f"chunk size {size}"
    return whole


# Basic structure ---------------------------------------------------------------------------


def test_single_part_with_headers() -> None:
    body = encode([([("Content-Type", "application/dicom")], b"DICM-bytes")])
    assert parse_every_way(body) == [({"content-type": "application/dicom"}, b"DICM-bytes")]


def test_header_names_are_case_insensitive_and_values_trimmed() -> None:
    body = encode([([("CONTENT-type", "  application/dicom  "), ("X-Extra", "a:b")], b"x")])
    assert parse_every_way(body) == [
        ({"content-type": "application/dicom", "x-extra": "a:b"}, b"x")
    ]


def test_part_without_headers() -> None:
    # RFC 2046 5.1.1: a part may have no header fields; then a blank line starts its body.
    body = b"--" + BOUNDARY.encode() + b"\r\n\r\nbody text\r\n--" + BOUNDARY.encode() + b"--"
    assert parse_every_way(body) == [({}, b"body text")]


def test_part_without_headers_whose_body_starts_with_crlf() -> None:
    body = encode([([], b"\r\n\r\nstarts with blank lines")])
    assert parse_every_way(body) == [({}, b"\r\n\r\nstarts with blank lines")]


def test_several_parts_and_empty_parts() -> None:
    parts = [
        ([("Content-Type", "application/dicom")], b"first"),
        ([("Content-Type", "application/dicom")], b""),
        ([], b""),
        ([("Content-Type", "application/octet-stream")], b"last"),
    ]
    assert parse_every_way(encode(parts)) == [
        ({"content-type": "application/dicom"}, b"first"),
        ({"content-type": "application/dicom"}, b""),
        ({}, b""),
        ({"content-type": "application/octet-stream"}, b"last"),
    ]


def test_no_parts_at_all() -> None:
    assert parse_every_way(b"--" + BOUNDARY.encode() + b"--\r\n") == []


def test_preamble_and_epilogue_are_ignored() -> None:
    # RFC 2046 5.1.1: text before the first and after the last delimiter is to be ignored,
    # even when it mentions the boundary without the leading CRLF + "--".
    body = encode(
        [([("Content-Type", "text/plain")], b"inside")],
        preamble=b"This is a preamble mentioning " + BOUNDARY.encode() + b" and --.",
        epilogue=b"epilogue\r\n--" + BOUNDARY.encode() + b"\r\nContent-Type: x\r\n\r\nnot a part",
    )
    assert parse_every_way(body) == [({"content-type": "text/plain"}, b"inside")]


def test_preamble_longer_than_the_delimiter_in_small_chunks() -> None:
    body = encode([([], b"payload")], preamble=b"p" * 5000 + b"\r\n--XbOuNd")
    assert parse_every_way(body) == [({}, b"payload")]


def test_transport_padding_after_the_boundary() -> None:
    # RFC 2046 5.1.1: "dash-boundary transport-padding CRLF"; padding is linear white space.
    body = encode([([("Content-Type", "a/b")], b"x"), ([], b"y")], padding=b" \t  ")
    assert parse_every_way(body) == [({"content-type": "a/b"}, b"x"), ({}, b"y")]


def test_close_delimiter_without_trailing_crlf() -> None:
    body = b"--B\r\n\r\ndata\r\n--B--"
    assert parse_every_way(body, "B") == [({}, b"data")]


def test_data_fed_after_the_close_delimiter_is_ignored() -> None:
    parser = MultipartParser("B")
    events = list(parser.feed(b"--B\r\n\r\nx\r\n--B--\r\n"))
    assert list(parser.feed(b"--B\r\n\r\nmore\r\n--B--")) == []
    parser.close()
    assert [type(e) for e in events] == [PartStart, PartData, PartEnd]


# Bodies that look like delimiters -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n--",
        b"a\r\n--b",
        b"\r\n--XbOuNdAr",  # the delimiter without its last character
        b"\r\n--xbOuNdArY",  # the boundary is case-sensitive
        b"--XbOuNdArY",  # no CRLF before it: not a delimiter (RFC 2046 5.1.1)
        b"\r\n-XbOuNdArY",
        b"\r\n\r\n--\r\n--XbOuNdAr\r\n",
        b"ends with a partial delimiter\r\n--XbOu",
        b"ends with CR\r",
        b"\r\n" * 40,
        bytes(range(256)) * 3,
    ],
)
def test_binary_bodies_with_delimiter_like_sequences(data: bytes) -> None:
    body = encode([([("Content-Type", "application/octet-stream")], data), ([], data)])
    assert parse_every_way(body) == [
        ({"content-type": "application/octet-stream"}, data),
        ({}, data),
    ]


@pytest.mark.parametrize("split", range(1, 40))
def test_delimiter_split_at_every_position_between_two_chunks(split: int) -> None:
    body = encode([([], b"0123456789\r\n--XbOu"), ([("A", "b")], b"tail")])
    at = body.index(b"\r\n--XbOuNdArY\r\nA:") + split  # cut inside the second delimiter
    parts = collect(MultipartParser(BOUNDARY), [body[:at], body[at:]])
    assert parts == [({}, b"0123456789\r\n--XbOu"), ({"a": "b"}, b"tail")]


def test_data_is_streamed_before_the_part_ends() -> None:
    # Bounded memory (DESIGN.md §5): a large part arrives as data events while it is sent,
    # holding back at most one delimiter's length.
    parser = MultipartParser(BOUNDARY)
    first = list(parser.feed(b"--XbOuNdArY\r\n\r\n" + b"a" * 100_000))
    assert isinstance(first[0], PartStart)
    streamed = b"".join(e.data for e in first if isinstance(e, PartData))
    assert len(streamed) >= 100_000 - len("\r\n--" + BOUNDARY)
    rest = list(parser.feed(b"\r\n--XbOuNdArY--"))
    streamed += b"".join(e.data for e in rest if isinstance(e, PartData))
    assert streamed == b"a" * 100_000
    assert isinstance(rest[-1], PartEnd)
    parser.close()


# Property: any parts, any chunking ---------------------------------------------------------

_BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
_boundaries = st.text(_BCHARS, min_size=1, max_size=70)
_header_values = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)
_headers = st.lists(
    st.tuples(st.sampled_from(["Content-Type", "Content-Location", "X-Thing"]), _header_values),
    max_size=3,
    unique_by=lambda h: h[0],
)
# Bytes biased towards the characters that delimiters are made of.
_bodies = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n--"]),
    ),
    max_size=12,
).map(b"".join)


@PROPERTY
@given(
    boundary=_boundaries,
    parts=st.lists(st.tuples(_headers, _bodies), max_size=5),
    preamble=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    one_byte=st.booleans(),
)
def test_any_parts_any_chunking(
    boundary: str,
    parts: list[tuple[list[tuple[str, str]], bytes]],
    preamble: bytes,
    cuts: list[int],
    one_byte: bool,
) -> None:
    delimiter = b"\r\n--" + boundary.encode()
    # RFC 2046 5.1.1: the boundary must not appear in the encapsulated parts (or the preamble).
    for headers, data in parts:
        assume(delimiter not in b"\r\n" + data + delimiter[:-1])
        assume(all(delimiter not in f"\r\n{n}: {v}\r\n".encode() for n, v in headers))
    assume(delimiter not in b"\r\n" + preamble + delimiter[:-1])
    body = encode(parts, boundary, preamble=preamble)
    if one_byte:
        chunks = [body[i : i + 1] for i in range(len(body))]
    else:
        points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
        chunks = [body[a:b] for a, b in itertools.pairwise(points)]
    assert b"".join(chunks) == body
    expected = [({n.lower(): v for n, v in headers}, data) for headers, data in parts]
    assert collect(MultipartParser(boundary), chunks) == expected


@PROPERTY
@given(parts=st.lists(_bodies, max_size=4), size=st.integers(min_value=1, max_value=50))
def test_writer_helpers_round_trip(parts: list[bytes], size: int) -> None:
    boundary = new_boundary()
    body = b"".join(
        part_header(boundary, "application/dicom", "Content-Location: x\r\n") + data + b"\r\n"
        for data in parts
    ) + closing(boundary)
    expected = [({"content-type": "application/dicom", "content-location": "x"}, p) for p in parts]
    assert parse(body, boundary, size) == expected


def test_new_boundary_is_random_and_valid() -> None:
    a, b = new_boundary(), new_boundary()
    assert a != b
    assert 1 <= len(a) <= 70 and all(c in _BCHARS for c in a)


# Errors: 400, never a hang or a crash (DESIGN.md §6) -----------------------------------------


def status_of(error: pytest.ExceptionInfo[HttpError]) -> int:
    return error.value.status


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"only a preamble, no delimiter at all",
        b"--XbOuNdArY",
        b"--XbOuNdArY\r\n",
        b"--XbOuNdArY\r\nContent-Type: a/b\r\n",
        b"--XbOuNdArY\r\nContent-Type: a/b\r\n\r\npart data without its end",
        b"--XbOuNdArY\r\n\r\ndata\r\n--XbOuNdArY",
        b"--XbOuNdArY\r\n\r\ndata\r\n--XbOuNdArY-",
        b"--XbOuNdArY\r\n\r\ndata\r\n--XbOuNdArY\r\n\r\nsecond",
    ],
)
@pytest.mark.parametrize("chunk_size", [None, 1])
def test_truncated_body_fails_on_close(body: bytes, chunk_size: int | None) -> None:
    with pytest.raises(HttpError) as error:
        parse(body, chunk_size=chunk_size)
    assert status_of(error) == 400


def test_close_after_the_closing_delimiter_succeeds() -> None:
    parser = MultipartParser("B")
    list(parser.feed(b"--B--"))
    parser.close()


@pytest.mark.parametrize("chunk_size", [None, 1000])
def test_oversized_part_headers(chunk_size: int | None) -> None:
    # Complete but huge headers are refused as well as headers that never end.
    huge = b"--XbOuNdArY\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\nbody\r\n--XbOuNdArY--"
    with pytest.raises(HttpError) as error:
        parse(huge, chunk_size=chunk_size)
    assert status_of(error) == 400


def test_headers_that_never_end_fail_before_the_body_does() -> None:
    parser = MultipartParser("B")
    list(parser.feed(b"--B\r\nX-Big: "))
    for _ in range(16):
        assert list(parser.feed(b"a" * 1000)) == []
    with pytest.raises(HttpError) as error:
        list(parser.feed(b"a" * 1000))
    assert status_of(error) == 400


def test_headers_just_under_the_limit_are_accepted() -> None:
    value = "a" * 16_000
    body = encode([([("X-Big", value)], b"ok")])
    assert parse(body, chunk_size=997) == [({"x-big": value}, b"ok")]


def test_delimiter_line_that_never_ends() -> None:
    parser = MultipartParser("B")
    with pytest.raises(HttpError) as error:
        list(parser.feed(b"--B" + b" " * 5000))
    assert status_of(error) == 400


@pytest.mark.parametrize("header", [b"no colon here", b"Content-Type: a/b\r\n folded continuation"])
def test_malformed_part_header(header: bytes) -> None:
    body = b"--B\r\n" + header + b"\r\n\r\nx\r\n--B--"
    with pytest.raises(HttpError) as error:
        parse(body, "B")
    assert status_of(error) == 400


@pytest.mark.parametrize("boundary", ["", "x" * 201])
def test_missing_or_absurd_boundary(boundary: str) -> None:
    with pytest.raises(HttpError) as error:
        MultipartParser(boundary)
    assert status_of(error) == 400
