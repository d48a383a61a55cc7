"""The byte-level walker: encodings, frames, error messages, and properties against pydicom.

Property tests write random data sets with pydicom in implicit VR LE, explicit VR LE and
explicit VR BE and require the walker's DICOM JSON to equal pydicom's `to_json_dict` of the same
bytes; fuzz tests require that cut or corrupted input only ever raises `InvalidDicomError`.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
import zlib
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)

from hounsfield.domain.dicomwalk import walk
from hounsfield.domain.errors import InvalidDicomError, MissingAttributeError
from hounsfield.domain.model import ParsedInstance
from tests.unit.test_dicomwalk_corpus import element_at, normalized, reference_json

#: HOUNSFIELD_WALK_EXAMPLES raises the example count for a longer fuzzing run.
PROPERTY = settings(
    max_examples=int(os.environ.get("HOUNSFIELD_WALK_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CT = "1.2.840.10008.5.1.4.1.1.2"
LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


# --- hand-made encodings -------------------------------------------------------------------


def el(tag: int, vr: str, value: bytes, *, implicit: bool = False, big: bool = False) -> bytes:
    """One data element (PS3.5 7.1.2/7.1.3); length 0xFFFFFFFF passes `value` through."""
    e = ">" if big else "<"
    head = struct.pack(f"{e}HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack(f"{e}L", len(value)) + value
    if vr in LONG:
        return head + vr.encode() + b"\0\0" + struct.pack(f"{e}L", len(value)) + value
    return head + vr.encode() + struct.pack(f"{e}H", len(value)) + value


def undefined(tag: int, vr: str | None, body: bytes, *, big: bool = False) -> bytes:
    e = ">" if big else "<"
    head = struct.pack(f"{e}HH", tag >> 16, tag & 0xFFFF)
    if vr is not None:
        head += vr.encode() + b"\0\0"
    return head + b"\xff\xff\xff\xff" + body + struct.pack(f"{e}HHL", 0xFFFE, 0xE0DD, 0)


def item(body: bytes, *, defined: bool = True) -> bytes:
    if defined:
        return struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body
    return (
        struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + body
        + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
    )


def uid(value: str) -> bytes:
    raw = value.encode()
    return raw + b"\0" * (len(raw) % 2)


def text(value: str) -> bytes:
    raw = value.encode("latin-1")
    return raw + b" " * (len(raw) % 2)


def ids(*, implicit: bool = False, big: bool = False) -> bytes:
    kw: dict[str, Any] = {"implicit": implicit, "big": big}
    return (
        el(0x00080016, "UI", uid(CT), **kw)
        + el(0x00080018, "UI", uid("1.2.3.4"), **kw)
        + el(0x0020000D, "UI", uid("1.2.3.1"), **kw)
        + el(0x0020000E, "UI", uid("1.2.3.2"), **kw)
    )


def part10(dataset: bytes, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Preamble, "DICM" and File Meta Information (PS3.10 7.1) in front of `dataset`."""
    meta = el(0x00020001, "OB", b"\0\1") + el(0x00020010, "UI", uid(syntax))
    group = el(0x00020000, "UL", struct.pack("<L", len(meta)))
    return b"\0" * 128 + b"DICM" + group + meta + dataset


def parse(data: bytes, **kwargs: Any) -> ParsedInstance:
    return walk(io.BytesIO(data), **kwargs)


def pydicom_json(data: bytes, threshold: int = 1024) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        return reference_json(ds, threshold)


# --- encodings and values ------------------------------------------------------------------


def test_ct_header_fields() -> None:
    data = part10(
        el(0x00080005, "CS", text("ISO_IR 100")) + ids() + el(0x00100010, "PN", text("Dö^J"))
    )
    parsed = parse(data)
    assert parsed.sop_class_uid == CT
    assert parsed.sop_instance_uid == "1.2.3.4"
    assert parsed.study_instance_uid == "1.2.3.1"
    assert parsed.series_instance_uid == "1.2.3.2"
    assert parsed.transfer_syntax_uid == ExplicitVRLittleEndian
    assert parsed.specific_character_set == ("ISO_IR 100",)
    assert parsed.has_file_meta
    assert parsed.dataset_offset == data.index(b"\x08\x00\x05\x00")
    assert parsed.dataset_json["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Dö^J"}]}
    assert parsed.dataset_json == pydicom_json(data)


@pytest.mark.parametrize(("implicit", "big"), [(True, False), (False, False), (False, True)])
def test_bare_data_set_is_detected(implicit: bool, big: bool) -> None:
    data = ids(implicit=implicit, big=big) + el(
        0x00280010, "US", struct.pack(">H" if big else "<H", 512), implicit=implicit, big=big
    )
    parsed = parse(data)
    assert not parsed.has_file_meta
    assert parsed.dataset_offset == 0
    assert parsed.transfer_syntax_uid == (
        ImplicitVRLittleEndian
        if implicit
        else ExplicitVRBigEndian
        if big
        else ExplicitVRLittleEndian
    )
    assert parsed.dataset_json["00280010"] == {"vr": "US", "Value": [512]}


def test_fallback_transfer_syntax_is_used_without_meta() -> None:
    parsed = parse(ids(big=True), fallback_transfer_syntax=ExplicitVRBigEndian)
    assert parsed.transfer_syntax_uid == ExplicitVRBigEndian
    assert parsed.sop_class_uid == CT


def test_uids_fall_back_to_media_storage_uids() -> None:
    meta = el(0x00020002, "UI", uid(CT)) + el(0x00020003, "UI", uid("9.9"))
    meta += el(0x00020010, "UI", uid(ExplicitVRLittleEndian))
    body = el(0x0020000D, "UI", uid("1.1")) + el(0x0020000E, "UI", uid("1.2"))
    parsed = parse(b"\0" * 128 + b"DICM" + meta + body)
    assert (parsed.sop_class_uid, parsed.sop_instance_uid) == (CT, "9.9")


def test_un_of_undefined_length_is_an_implicit_vr_sequence() -> None:
    """PS3.5 6.2.2: a UN value of undefined length holds an implicit VR LE sequence."""
    inner = el(0x00100020, "LO", text("ID1"), implicit=True)
    data = part10(ids() + undefined(0x00081115, "UN", item(inner, defined=False)))
    parsed = parse(data)
    assert parsed.dataset_json["00081115"] == {
        "vr": "SQ",
        "Value": [{"00100020": {"vr": "LO", "Value": ["ID1"]}}],
    }
    assert parsed.dataset_json == pydicom_json(data)


def test_nested_bulk_data_paths_and_ranges() -> None:
    blob = bytes(range(256)) * 4
    inner = el(0x00420011, "OB", blob)
    data = part10(ids() + el(0x00400260, "SQ", item(b"") + item(inner)))
    parsed = parse(data)
    uri = "bulkdata/00400260/1/00420011"
    assert parsed.dataset_json["00400260"]["Value"][1]["00420011"] == {
        "vr": "OB",
        "BulkDataURI": uri,
    }
    offset, length = parsed.bulk_ranges[uri]
    assert data[offset : offset + length] == blob


@pytest.mark.parametrize(("length", "bulk"), [(768, False), (769, True)])
def test_bulk_threshold_is_on_the_base64_size(length: int, bulk: bool) -> None:
    data = part10(ids() + el(0x00420011, "OB", b"\1" * length))
    element = parse(data, bulk_threshold=1024).dataset_json["00420011"]
    assert ("BulkDataURI" in element) == bulk
    assert ("InlineBinary" in element) != bulk


@pytest.mark.parametrize(
    ("vr", "raw", "expected"),
    [
        ("DS", b"1\\\\2 ", {"vr": "DS", "Value": [1.0, None, 2.0]}),
        ("DS", b"abc ", {"vr": "DS", "Value": ["abc"]}),
        ("IS", b"1.5 ", {"vr": "IS", "Value": [1]}),
        ("IS", b"x\\1", {"vr": "IS", "Value": ["x", "1"]}),
        ("PN", b"A\\\\B ", {"vr": "PN", "Value": [{"Alphabetic": "A"}, None, {"Alphabetic": "B"}]}),
        ("US", b"\1\0\2", {"vr": "UN", "InlineBinary": "AQAC"}),
        ("AT", b"\x10\x00\x20\x00\x01\x00", {"vr": "AT", "Value": ["00100020"]}),
    ],
)
def test_values_pydicom_cannot_convert(vr: str, raw: bytes, expected: dict[str, Any]) -> None:
    """Where pydicom raises, the walker keeps what it can and uses null for empty items."""
    data = part10(ids() + el(0x00191010, vr, raw))
    assert parse(data).dataset_json["00191010"] == expected


def test_ambiguous_us_or_ss_follows_pixel_representation() -> None:
    """PS3.5 A.1: in implicit VR, Smallest Image Pixel Value takes the VR of Pixel Repr."""
    body = ids(implicit=True) + el(0x00280103, "US", b"\1\0", implicit=True)
    body += el(0x00280106, "", b"\xff\xff", implicit=True)
    data = part10(body, ImplicitVRLittleEndian)
    assert parse(data).dataset_json["00280106"] == {"vr": "SS", "Value": [-1]}
    assert parse(data).dataset_json == pydicom_json(data)


def test_private_vr_from_private_dictionary_in_implicit_vr() -> None:
    body = ids(implicit=True) + el(0x00190010, "", text("GEMS_ACQU_01"), implicit=True)
    body += el(0x00191002, "", struct.pack("<l", 7), implicit=True)
    data = part10(body, ImplicitVRLittleEndian)
    parsed = parse(data)
    assert parsed.dataset_json == pydicom_json(data)
    assert parsed.dataset_json["00190010"]["vr"] == "LO"


def test_deflated_data_set() -> None:
    body = ids() + el(0x00420011, "OB", b"\5" * 2000)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = part10(deflater.compress(body) + deflater.flush(), DeflatedExplicitVRLittleEndian)
    parsed = parse(data)
    assert parsed.dataset_json["00420011"] == {"vr": "OB", "BulkDataURI": "bulkdata/00420011"}
    assert parsed.bulk_ranges == {}
    assert parsed.pixel is None
    assert parsed.sop_instance_uid == "1.2.3.4"


# --- pixel data layout (PS3.5 8.1.1, A.4) --------------------------------------------------


def image(pixel: bytes, syntax: str, **attrs: int) -> bytes:
    """A minimal image: Samples per Pixel, Number of Frames, Rows, Columns, Bits Allocated."""
    body = ids() + el(0x00280002, "US", struct.pack("<H", attrs.get("spp", 1)))
    if "frames" in attrs:
        body += el(0x00280008, "IS", text(str(attrs["frames"])))
    body += el(0x00280010, "US", struct.pack("<H", attrs.get("rows", 2)))
    body += el(0x00280011, "US", struct.pack("<H", attrs.get("columns", 2)))
    body += el(0x00280100, "US", struct.pack("<H", attrs.get("bits", 8)))
    if syntax == ExplicitVRLittleEndian:
        return part10(body + el(0x7FE00010, "OB", pixel), syntax)
    return part10(body + undefined(0x7FE00010, "OB", pixel), syntax)


def frame_bytes(data: bytes, parsed: ParsedInstance) -> list[bytes]:
    assert parsed.pixel is not None
    return [b"".join(data[o : o + n] for o, n in frame) for frame in parsed.pixel.frames]


def test_native_frames() -> None:
    pixel = bytes(range(12))
    data = image(pixel, ExplicitVRLittleEndian, frames=3)
    assert frame_bytes(data, parse(data)) == [pixel[0:4], pixel[4:8], pixel[8:12]]


def test_single_bit_frames_that_are_not_byte_aligned() -> None:
    """3x3 one-bit frames are 9 bits: frame i covers bytes floor(9i/8)..ceil(9(i+1)/8)."""
    data = image(b"\xaa\x55\xaa\x55", ExplicitVRLittleEndian, rows=3, columns=3, bits=1, frames=3)
    parsed = parse(data)
    assert parsed.pixel is not None
    start = parsed.pixel.value_offset
    assert parsed.pixel.frames == (((start, 2),), ((start + 1, 2),), ((start + 2, 2),))


def test_encapsulated_with_basic_offset_table() -> None:
    frames = [b"\xff\xd8" + bytes([i]) * 30 + b"\xff\xd9" for i in range(3)]
    data = image(encapsulate(frames, fragments_per_frame=2, has_bot=True), RLELossless, frames=3)
    parsed = parse(data)
    assert frame_bytes(data, parsed) == frames
    assert parsed.pixel is not None and all(len(f) == 2 for f in parsed.pixel.frames)
    assert parsed.pixel.value_length == -1


def test_encapsulated_without_table_uses_end_of_image_markers() -> None:
    frames = [b"\xff\xd8" + bytes([i]) * 40 + b"\xff\xd9" for i in range(3)]
    data = image(
        encapsulate(frames, fragments_per_frame=2, has_bot=False), JPEGBaseline8Bit, frames=3
    )
    assert frame_bytes(data, parse(data)) == frames


def test_encapsulated_one_fragment_per_frame_and_single_frame() -> None:
    frames = [bytes([i]) * 10 for i in range(4)]
    data = image(encapsulate(frames, has_bot=False), RLELossless, frames=4)
    assert frame_bytes(data, parse(data)) == frames
    data = image(encapsulate([b"\1" * 64], fragments_per_frame=4, has_bot=False), RLELossless)
    assert frame_bytes(data, parse(data)) == [b"\1" * 64]


def test_encapsulated_with_extended_offset_table() -> None:
    frames = [bytes([i]) * (9 + i) for i in range(3)]
    pixel, offsets, lengths = encapsulate_extended(frames)
    data = image(pixel, RLELossless, frames=3)
    tables = el(0x7FE00001, "OV", offsets) + el(0x7FE00002, "OV", lengths)
    cut = data.index(b"\xe0\x7f\x10\x00")
    data = data[:cut] + tables + data[cut:]
    # pydicom records the even (padded) fragment length as the frame length
    assert frame_bytes(data, parse(data)) == [f + b"\0" * (len(f) % 2) for f in frames]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is plain text and not a DICOM file at all", "not DICOM"),
        (b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x40\x00", "runs past the end"),
        (part10(ids()) + b"\x08\x00\x20", "truncated"),
        (part10(ids() + el(0x00100010, "PN", b"AB")[:-2]), "runs past the end"),
        (part10(ids() + b"\x08\x00\x20\x00DA\x08\x00"), "runs past the end"),
        (part10(ids() + undefined(0x7FE00010, "OB", b"")[:-8]), "no Sequence Delimitation"),
        (part10(ids() + el(0x00400260, "SQ", b"\x08\x00\x20\x00\0\0\0\0")), "expected an Item"),
    ],
)
def test_error_messages(data: bytes, message: str) -> None:
    with pytest.raises(InvalidDicomError, match=message):
        parse(data, require_uids=False)


def test_missing_uid_names_the_attribute() -> None:
    with pytest.raises(MissingAttributeError, match="SeriesInstanceUID"):
        parse(part10(el(0x00080016, "UI", uid(CT)) + el(0x00080018, "UI", uid("1.2"))))


def test_deeply_nested_sequences_are_refused() -> None:
    body = b""
    for _ in range(150):
        body = item(undefined(0x00400260, "SQ", body), defined=False)
    data = part10(ids() + undefined(0x00400260, "SQ", body))
    with pytest.raises(InvalidDicomError, match="nested deeper"):
        parse(data)


def test_corrupt_deflate_stream() -> None:
    with pytest.raises(InvalidDicomError, match="deflated"):
        parse(part10(b"\xff" * 64, DeflatedExplicitVRLittleEndian))


# --- properties against pydicom ------------------------------------------------------------

SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)
ASCII = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .-_^"
LATIN1 = ASCII + "äöüßéèàçñÆØÅ"
UNICODE = LATIN1 + "日本語한국어Ελληνικάрусский"
CHARSETS = {None: ASCII, "ISO_IR 100": LATIN1, "ISO_IR 192": UNICODE}
BINARY_UNIT = {"OB": 1, "UN": 1, "OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
US_SS_TAGS = (0x00280106, 0x00280107, 0x00280120, 0x00189810)


def _tags_by_vr() -> dict[str, list[int]]:
    from pydicom._dicom_dict import DicomDictionary

    pool: dict[str, list[int]] = {}
    for tag, (vr, _vm, _name, retired, _kw) in DicomDictionary.items():
        group = tag >> 16
        if retired or group in (0x0000, 0x0002, 0x7FE0, 0xFFFE) or tag & 0xFFFF == 0:
            continue
        if tag not in (0x00080005, 0x00280103):  # drawn on purpose, see `datasets`
            pool.setdefault(vr, []).append(tag)
    pool.pop("SQ", None)
    return {vr: tags for vr, tags in pool.items() if " or " not in vr and vr not in ("NONE",)}


TAGS = _tags_by_vr()
SEQUENCE_TAGS = [0x00081115, 0x00400260, 0x00082112, 0x0040A730]


def value_for(vr: str, alphabet: str, threshold: int) -> st.SearchStrategy[Any]:
    def many(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(s, min_size=1, max_size=3)

    words = st.text(alphabet, min_size=1, max_size=10).map(str.strip).filter(bool)
    plain = st.text(ASCII.replace("^", ""), min_size=1, max_size=10).map(str.strip).filter(bool)
    if vr in ("SH", "LO", "UC"):
        return many(words)
    if vr in ("ST", "LT", "UT"):
        return st.text(alphabet + "\\\r\n", max_size=40)
    if vr == "PN":
        group = st.lists(words.map(lambda w: w.replace("=", "")), min_size=1, max_size=3)
        return many(st.lists(group.map("^".join), min_size=1, max_size=3).map("=".join))
    if vr in ("AE", "CS"):
        return many(plain.map(lambda w: w.upper()[:16]))
    if vr in ("DA", "TM", "DT", "AS"):
        return many(st.text("0123456789", min_size=1, max_size=8))
    if vr == "UI":
        return many(
            st.lists(st.integers(0, 99999), min_size=2, max_size=6).map(
                lambda p: ".".join(map(str, p))
            )
        )
    if vr == "UR":
        return st.text(ASCII.replace(" ", ""), min_size=1, max_size=30)
    if vr == "DS":
        return many(st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.6g}"))
    if vr == "IS":
        return many(st.integers(-(2**31), 2**31 - 1).map(str))
    ranges = {"US": (0, 2**16 - 1), "SS": (-(2**15), 2**15 - 1), "UL": (0, 2**32 - 1),
              "SL": (-(2**31), 2**31 - 1), "SV": (-(2**63), 2**63 - 1), "UV": (0, 2**64 - 1),
              "AT": (0, 2**32 - 1)}  # fmt: skip
    if vr in ranges:
        return many(st.integers(*ranges[vr]))
    if vr == "FL":
        return many(st.floats(width=32))
    if vr == "FD":
        return many(st.floats())
    unit = BINARY_UNIT[vr]
    limit = (threshold // 4) * 3
    sizes = st.sampled_from([0, unit, limit - limit % unit, limit + unit, 2 * limit + unit])
    return sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n))


@st.composite
def datasets(draw: st.DrawFn, alphabet: str, threshold: int, depth: int = 0) -> Dataset:
    ds = Dataset()
    vrs = sorted(TAGS)
    for _ in range(draw(st.integers(0, 8 if depth else 14))):
        vr = draw(st.sampled_from(vrs))
        tag = draw(st.sampled_from(TAGS[vr]))
        ds.add_new(tag, vr, draw(value_for(vr, alphabet, threshold)))
    if draw(st.booleans()):  # Pixel Representation here, in a parent, or nowhere
        ds.add_new(0x00280103, "US", draw(st.integers(0, 1)))
    for tag in draw(st.lists(st.sampled_from(US_SS_TAGS), max_size=2)):
        ds.add_new(tag, "US", draw(st.integers(0, 99)))
    if draw(st.booleans()):
        block = ds.private_block(0x0009, "HOUNSFIELD TEST", create=True)
        for offset, vr in enumerate(
            draw(st.lists(st.sampled_from(["LO", "US", "OB", "DS"]), max_size=3))
        ):
            block.add_new(offset, vr, draw(value_for(vr, alphabet, threshold)))
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        items = draw(st.lists(datasets(alphabet, threshold, depth + 1), max_size=3))
        ds.add_new(draw(st.sampled_from(SEQUENCE_TAGS)), "SQ", items)
    return ds


@st.composite
def encoded(draw: st.DrawFn) -> tuple[bytes, int]:
    """A random data set written by pydicom in one of the three native encodings."""
    threshold = draw(st.sampled_from([0, 16, 64, 1024]))
    charset = draw(st.sampled_from(sorted(CHARSETS, key=str)))
    syntax = draw(st.sampled_from(SYNTAXES))
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom validates values as they are set
        ds = draw(datasets(CHARSETS[charset], threshold))
        if charset is not None:
            ds.SpecificCharacterSet = charset
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = "1.2.3.4"
        ds.StudyInstanceUID = "1.2.3.1"
        ds.SeriesInstanceUID = "1.2.3.2"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue(), threshold


@PROPERTY
@given(encoded())
def test_json_equals_pydicom(case: tuple[bytes, int]) -> None:
    data, threshold = case
    parsed = parse(data, bulk_threshold=threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
        expected = reference_json(ds, threshold)
    assert normalized(parsed.dataset_json) == normalized(expected)
    for uri, (offset, length) in parsed.bulk_ranges.items():
        assert data[offset : offset + length] == element_at(ds, uri).value
    assert parsed.sop_instance_uid == "1.2.3.4"


def _walk_or_invalid(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom.charset warns on undecodable text
        with contextlib.suppress(InvalidDicomError):
            parse(data, require_uids=False)


@PROPERTY
@given(encoded(), st.data())
def test_truncated_input_is_rejected_or_read(case: tuple[bytes, int], data: st.DataObject) -> None:
    raw, _ = case
    _walk_or_invalid(raw[: data.draw(st.integers(0, len(raw) - 1))])


@PROPERTY
@given(encoded(), st.data())
def test_corrupted_input_is_rejected_or_read(case: tuple[bytes, int], data: st.DataObject) -> None:
    raw = bytearray(case[0])
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(132, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _walk_or_invalid(bytes(raw))


@PROPERTY
@given(st.binary(max_size=600), st.booleans())
def test_garbage_is_not_dicom(garbage: bytes, with_prefix: bool) -> None:
    data = b"\0" * 128 + b"DICM" + garbage if with_prefix else garbage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidDicomError):
            parse(data)


# --- hand-made corner cases, each compared with pydicom -------------------------------------

GEMS = el(0x00190010, "LO", text("GEMS_ACQU_01"))
IMPLICIT_ITEM = el(0x00100020, "LO", text("ID"), implicit=True)


def implicit_part10(body: bytes) -> bytes:
    return part10(ids(implicit=True) + body, ImplicitVRLittleEndian)


CORNER_CASES = {
    "explicit SS LUT Descriptor: first value is unsigned": part10(
        ids()
        + el(0x00283010, "SQ", item(el(0x00283002, "SS", struct.pack("<3h", -1, 0, 16))))
    ),
    "implicit LUT Data is US when the LUT has one entry": implicit_part10(
        el(0x00283010, "", item(
            el(0x00283002, "", struct.pack("<3H", 1, 0, 16), implicit=True)
            + el(0x00283006, "", struct.pack("<H", 7), implicit=True)
        ), implicit=True)
    ),
    "implicit LUT Data is OW otherwise": implicit_part10(
        el(0x00283010, "", item(
            el(0x00283002, "", struct.pack("<3H", 2, 0, 16), implicit=True)
            + el(0x00283006, "", struct.pack("<2H", 7, 8), implicit=True)
        ), implicit=True)
    ),
    "implicit US or SS inherits Pixel Representation from the parent": implicit_part10(
        el(0x00280103, "", b"\1\0", implicit=True)
        + el(0x00283010, "", item(el(0x00283002, "", b"\xff\xff\0\0\x10\0", implicit=True)),
             implicit=True)
    ),
    "implicit US or SS before Pixel Representation": implicit_part10(
        el(0x00189810, "", b"\xfe\xff", implicit=True) + el(0x00280103, "", b"\1\0", implicit=True)
    ),
    "implicit overlay and waveform data are OW": implicit_part10(
        el(0x54000100, "", item(el(0x54001010, "", b"\1\2", implicit=True)), implicit=True)
        + el(0x60003000, "", b"\1\2\3\4", implicit=True)
    ),
    "implicit native pixel data is OW": implicit_part10(el(0x7FE00010, "", b"\1\2", implicit=True)),
    "explicit UN with a public tag takes the dictionary VR": part10(
        ids() + el(0x00100010, "UN", text("Doe^John")) + el(0x00101010, "UN", text("042Y"))
    ),
    "explicit UN with a dictionary SQ tag is a sequence": part10(
        ids() + el(0x00081115, "UN", item(IMPLICIT_ITEM))
    ),
    "explicit UN private element with a known creator": part10(
        ids() + GEMS + el(0x00191002, "UN", struct.pack("<l", -5))
    ),
    "implicit item inside an explicit defined-length sequence": part10(
        ids() + el(0x00081115, "SQ", item(IMPLICIT_ITEM) + item(b""))
    ),
    "undefined-length items and sequences": part10(
        ids() + undefined(0x00081115, "SQ", item(el(0x00100020, "LO", b"A "), defined=False))
    ),
    "implicit private undefined length holding items": implicit_part10(
        el(0x00290010, "", text("ANY CREATOR"), implicit=True)
        + undefined(0x00291010, None, item(IMPLICIT_ITEM, defined=False))
    ),
    "implicit private undefined length holding bytes": implicit_part10(
        undefined(0x00291010, None, b"\1\2\3\4")
    ),
    "private group length in implicit VR is UN": implicit_part10(
        el(0x00090000, "", b"\4\0\0\0", implicit=True)
    ),
    "group length in implicit VR is UL": implicit_part10(
        el(0x00100000, "", b"\4\0\0\0", implicit=True)
    ),
    "elements after pixel data and trailing padding": part10(
        ids() + el(0x7FE00010, "OW", b"\0" * 2048) + el(0xFFFCFFFC, "OB", b"\0" * 10)
    ),
    "command set group before the data set": (
        el(0x00000002, "", uid(CT), implicit=True) + el(0x00000100, "", b"\1\0", implicit=True)
        + ids()
    ),
    "implicit VR element inside explicit VR data": part10(
        ids() + el(0x00100020, "", text("X1"), implicit=True) + el(0x00100030, "DA", b"20200101")
    ),
    "multi-valued text with empty values": part10(
        ids() + el(0x00080008, "CS", b"A\\\\B ") + el(0x00081030, "LO", b"\\x\\")
    ),
    "ISO 2022 escape sequence under the default repertoire": part10(
        ids() + el(0x00100010, "PN", b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B")
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CORNER_CASES))
def test_corner_case_equals_pydicom(name: str) -> None:
    data = CORNER_CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = parse(data)
    assert parsed.dataset_json == pydicom_json(data)


class TrickleReader(io.BytesIO):
    """A stream that, like a raw file or a pipe, may return fewer bytes than asked for."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(7 if size is None or size < 0 else min(size, 7))


def test_short_reads_are_retried() -> None:
    data = CORNER_CASES["elements after pixel data and trailing padding"]
    assert walk(TrickleReader(data)) == parse(data)
