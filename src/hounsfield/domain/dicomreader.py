"""The element loop behind `domain.dicomwalk`: data sets, sequences and undefined lengths.

Encoding rules implemented here, with the clause that requires each:

- data element headers: implicit VR (PS3.5 7.1.3), explicit VR with 16- or 32-bit lengths
  (PS3.5 7.1.2, Table 7.1-1/7.1-2), little or big endian (PS3.5 7.3);
- sequences and items of defined or undefined length, with Item, Item Delimitation and Sequence
  Delimitation Items (PS3.5 7.5, Table 7.5-1..3);
- UN of undefined length holds a sequence in implicit VR little endian (PS3.5 6.2.2); any item
  whose first element has no valid VR is read as implicit VR, as pydicom does, since some
  writers switch encodings inside sequences;
- undefined-length values other than sequences (encapsulated pixel data, PS3.5 A.4) are
  walked item by item; if that fails, the Sequence Delimitation Item is searched for;
- ambiguous dictionary VRs ("US or SS", "OB or OW", ...) in implicit VR are resolved from
  Pixel Representation, Bits Allocated, LUT Descriptor and Waveform Bits Allocated
  (PS3.5 A.1, PS3.3 C.7.6.3.1.4, C.11.1.1, C.10.9.1.5).
"""

from __future__ import annotations

from base64 import b64encode
from dataclasses import dataclass
from struct import Struct
from typing import Any

from hounsfield.domain import dicomvr as vrs
from hounsfield.domain.dicomjson import (
    CONVERTERS,
    DEFAULT_CHARSET,
    Charset,
    WrongLengthError,
    charset_terms,
    convert_numbers,
)
from hounsfield.domain.dicomsource import UNDEFINED, WalkState
from hounsfield.domain.errors import InvalidDicomError
from hounsfield.domain.model import ByteRange, DicomJson

SCAN_CHUNK = 1024
#: Nesting deeper than this is hostile input, not a clinical object (guards the recursion).
MAX_DEPTH = 100
#: Bounds on what one header may make the walker build (DESIGN section 6, "a huge header"):
#: a multi-frame enhanced object with 10,000 frames has a few hundred thousand elements.
MAX_ELEMENTS = 1 << 22
MAX_ITEMS = 1 << 22

_LE = Struct("<HHL")
_BE = Struct(">HHL")
_UL_LE = Struct("<L")
_UL_BE = Struct(">L")
_SHORT = {v.encode(): v for v in vrs.SHORT_VRS}
_LONG = vrs.LONG_VR_NAMES
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_NOTE_TAGS = frozenset(
    {
        vrs.SPECIFIC_CHARACTER_SET,
        vrs.PIXEL_REPRESENTATION,
        vrs.LUT_DESCRIPTOR,
        vrs.WAVEFORM_BITS_ALLOCATED,
        vrs.BITS_ALLOCATED,
    }
    | vrs.LUT_DESCRIPTOR_TAGS
)


class Ctx:
    """One data set being walked: its JSON, its encoding and what later elements depend on."""

    __slots__ = (
        "bits_allocated",
        "charset",
        "creators",
        "implicit",
        "lut_first",
        "out",
        "parent",
        "pixel_rep",
        "pixel_rep_empty",
        "prefix",
        "wave_bits",
    )

    def __init__(self, parent: Ctx | None, implicit: bool, charset: Charset, prefix: str) -> None:
        self.out: DicomJson = {}
        self.parent = parent
        self.implicit = implicit
        self.charset = charset
        self.prefix = prefix
        self.creators: dict[int, str] = {}
        self.pixel_rep: int | None = None
        self.pixel_rep_empty = False
        self.lut_first: int | None = None
        self.wave_bits: int | None = None
        self.bits_allocated: int | None = None


@dataclass(slots=True)
class PixelFound:
    """The top-level pixel data element: value offset/length, and items if encapsulated
    (Basic Offset Table first); `fragments` is None for native data."""

    tag: int
    offset: int
    length: int
    fragments: list[ByteRange] | None


class Walker:
    """Walks the data set once, filling the root JSON, bulk data ranges and pixel location."""

    def __init__(self, state: WalkState) -> None:
        self.state = state
        self.limit = (state.threshold // 4) * 3
        self.root = Ctx(None, False, DEFAULT_CHARSET, "bulkdata/")
        self.bulk_ranges: dict[str, ByteRange] = {}
        self.pixel: PixelFound | None = None
        self.extended_offsets: ByteRange | None = None
        self.extended_lengths: ByteRange | None = None
        self.root_charset_terms: list[str] = []
        self.pending: list[tuple[dict[str, Any], bytes, bool, Ctx]] = []
        self.depth = 0
        self.count = 0

    def command_set(self, pos: int) -> int:
        """Group 0000 elements before the data set are read as implicit VR LE (PS3.7 6.3)."""
        state = self.state
        implicit = self.root.implicit
        self.root.implicit = True
        while state.size - pos >= 8:
            off = state.window(pos, 8)
            group, element, length = _LE.unpack_from(state.buf, off)
            if group != 0:
                break
            pos = self._element(self.root, element, None, length, pos + 8, True)
        self.root.implicit = implicit
        return pos

    def data_set(self, pos: int, little: bool) -> int:
        return self._dataset(self.root, pos, self.state.size, little)

    def finish(self) -> DicomJson:
        """Resolve "US or SS" values now that every Pixel Representation is known."""
        for element, raw, little, ctx in self.pending:
            rep = None
            node: Ctx | None = ctx
            while node is not None and rep is None:
                rep = node.pixel_rep
                node = node.parent
            if rep is None:
                rep = 1 if ctx.pixel_rep_empty else 0
            vr = "US" if rep == 0 else "SS"
            element["vr"] = vr
            try:
                values = convert_numbers(raw, little, vr)
            except WrongLengthError:
                element["vr"] = "UN"
                element["InlineBinary"] = b64encode(raw).decode("ascii")
                continue
            if values is not None:
                element["Value"] = values
        self.pending.clear()
        return self.root.out

    def _dataset(self, ctx: Ctx, pos: int, end: int, little: bool) -> int:
        """Elements from `pos` to `end` (-1: up to an Item Delimitation Item)."""
        state = self.state
        header = _LE if little else _BE
        ul = _UL_LE if little else _UL_BE
        implicit = ctx.implicit
        short, long_ = _SHORT, _LONG
        while end < 0 or pos < end:
            buf = state.buf
            off = pos - state.base
            if off < 0 or off + 8 > len(buf):  # the window check, inlined: this is the hot loop
                off = state.window(pos, 8)
                buf = state.buf
            group, element, word = header.unpack_from(buf, off)
            if group == 0xFFFE:
                if element == 0xE00D:  # Item Delimitation Item (PS3.5 7.5.2)
                    return pos + 8
                raise InvalidDicomError(
                    f"unexpected ({group:04X},{element:04X}) at offset {pos} inside a data set"
                )
            tag = group << 16 | element
            vpos = pos + 8
            if implicit:
                pos = self._element(ctx, tag, None, word, vpos, little)
                continue
            vrb = buf[off + 4 : off + 6]
            vr = short.get(vrb)
            if vr is not None:
                length = word >> 16 if little else word & 0xFFFF
            else:
                vr = long_.get(vrb)
                if vr is not None:
                    off = state.window(pos, 12)
                    length = ul.unpack_from(state.buf, off + 8)[0]
                    vpos = pos + 12
                elif not vrs.is_uppercase_vr(vrb[0], vrb[1]):
                    vr, length = None, word  # implicit VR element inside explicit VR data
                else:
                    vr = "UN"  # unknown VR: 16-bit length (PS3.5 7.1.2 note), kept as bytes
                    length = word >> 16 if little else word & 0xFFFF
            pos = self._element(ctx, tag, vr, length, vpos, little)
        return pos

    def _element(
        self, ctx: Ctx, tag: int, vr: str | None, length: int, vpos: int, little: bool
    ) -> int:
        if length == UNDEFINED:
            return self._undefined(ctx, tag, vr, vpos, little)
        state = self.state
        end = vpos + length
        if end > state.size:
            raise InvalidDicomError(
                f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) value at offset {vpos}: "
                f"length {length} runs past the end of the data ({state.size} bytes)"
            )
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise InvalidDicomError(f"more than {MAX_ELEMENTS} data elements; refusing the header")
        if vr is None:
            vr = vrs.implicit_vr(tag, ctx.creators.get(tag >> 8))
        elif vr == "UN":
            vr = self._un_vr(ctx, tag, length)
        convert = CONVERTERS.get(vr)
        element: dict[str, Any]
        if convert is not None:
            off = vpos - state.base
            buf = state.buf
            if off >= 0 and off + length <= len(buf):
                raw = buf[off : off + length]
            else:
                raw = state.read(vpos, length)
            try:
                values = convert(raw, little, ctx.charset)
            except WrongLengthError:
                element = self._binary(ctx, tag, "UN", vpos, length)
            else:
                element = {"vr": vr} if values is None else {"vr": vr, "Value": values}
                if tag in _NOTE_TAGS or (tag & 0x10000 and 0x10 <= tag & 0xFFFF <= 0xFF):
                    self._note(ctx, tag, values, raw)
        elif vr in vrs.BINARY_VRS:
            element = self._binary(ctx, tag, vr, vpos, length)
        elif vr == "SQ":
            items, _ = self._sequence(ctx, tag, vpos, length, little, ctx.implicit)
            element = {"vr": "SQ", "Value": items}
        else:
            element = self._ambiguous(ctx, tag, vr, vpos, length, little, False)
        ctx.out[f"{tag:08X}"] = element
        return end

    def _un_vr(self, ctx: Ctx, tag: int, length: int) -> str:
        """UN with a known tag is re-read with the dictionary VR (PS3.5 6.2.2 notes), as
        pydicom's `replace_un_with_known_vr` does, unless the value is too long for it."""
        if tag & 0x10000:
            return vrs.private_vr(tag, ctx.creators.get(tag >> 8))
        if length < 0xFFFF:
            return vrs.public_vr(tag) or "UN"
        return "UN"

    def _note(self, ctx: Ctx, tag: int, values: list[Any] | None, raw: bytes) -> None:
        """Remember values that decide how later elements are read."""
        if tag == vrs.SPECIFIC_CHARACTER_SET:
            terms = charset_terms(raw)
            ctx.charset = Charset.from_terms(terms)
            if ctx is self.root:
                self.root_charset_terms = terms
            return
        if tag & 0x10000:  # Private Creator (PS3.5 7.8.1)
            if values is not None and len(values) == 1 and isinstance(values[0], str):
                ctx.creators[(tag >> 16) << 8 | (tag & 0xFF)] = values[0]
            return
        first = values[0] if values else None
        if first is not None and not isinstance(first, int):
            return
        if tag in vrs.LUT_DESCRIPTOR_TAGS:
            if values is not None and len(values) > 1 and values[0] < 0:
                values[0] += 65536  # PS3.3 C.7.6.3.1.5: the first value is unsigned
            if tag == vrs.LUT_DESCRIPTOR:
                ctx.lut_first = values[0] if values else None
        elif tag == vrs.PIXEL_REPRESENTATION:
            ctx.pixel_rep = first
            ctx.pixel_rep_empty = first is None
        elif tag == vrs.WAVEFORM_BITS_ALLOCATED:
            ctx.wave_bits = first
        elif tag == vrs.BITS_ALLOCATED:
            ctx.bits_allocated = first

    def _binary(self, ctx: Ctx, tag: int, vr: str, vpos: int, length: int) -> dict[str, Any]:
        """OB/OD/OF/OL/OV/OW/UN as InlineBinary or, above the threshold, BulkDataURI
        (PS3.18 F.2.7); the base64 of a value is a third longer than the value."""
        if ctx is self.root:
            if tag in _PIXEL_TAGS:
                if self.pixel is None or tag == vrs.PIXEL_DATA:
                    self.pixel = PixelFound(tag, vpos, length, None)
            elif tag == 0x7FE00001:
                self.extended_offsets = (vpos, length)
            elif tag == 0x7FE00002:
                self.extended_lengths = (vpos, length)
        if length == 0:
            return {"vr": vr}
        if length > self.limit:
            uri = f"{ctx.prefix}{tag:08X}"
            self.bulk_ranges[uri] = (vpos, length)
            return {"vr": vr, "BulkDataURI": uri}
        return {"vr": vr, "InlineBinary": b64encode(self.state.read(vpos, length)).decode("ascii")}

    def _ambiguous(
        self, ctx: Ctx, tag: int, vr: str, vpos: int, length: int, little: bool, undefined: bool
    ) -> dict[str, Any]:
        """Resolve a dictionary VR such as "US or SS" (PS3.5 A.1, PS3.6 6 notes)."""
        if vr == "US or SS":
            raw = self.state.read(vpos, length)
            if tag == vrs.LUT_DESCRIPTOR and length >= 2:  # its first value is always US
                ctx.lut_first = raw[0] | raw[1] << 8 if little else raw[0] << 8 | raw[1]
            element: dict[str, Any] = {"vr": "US"}
            self.pending.append((element, raw, little, ctx))
            return element
        if tag == vrs.LUT_DATA and vr == "US or OW" and ctx.lut_first == 1:
            raw = self.state.read(vpos, length)
            try:
                values = convert_numbers(raw, little, "US")
            except WrongLengthError:
                return self._binary(ctx, tag, "UN", vpos, length)
            return {"vr": "US"} if values is None else {"vr": "US", "Value": values}
        if vr not in vrs.AMBIGUOUS_VRS:
            return self._binary(ctx, tag, "UN", vpos, length)  # e.g. "NONE": keep the bytes
        resolved = "OW"  # implicit VR OB-or-OW data is OW (PS3.5 A.1 c)
        if tag == vrs.PIXEL_DATA:
            if undefined:
                resolved = "OB"  # encapsulated (PS3.5 A.4)
            elif not ctx.implicit and ctx.bits_allocated is not None:
                resolved = "OW" if ctx.bits_allocated > 8 else "OB"
        elif tag in vrs.WAVEFORM_OB_OW_TAGS and not ctx.implicit and ctx.wave_bits is not None:
            resolved = "OW" if ctx.wave_bits > 8 else "OB"
        return self._binary(ctx, tag, resolved, vpos, length)

    def _undefined(self, ctx: Ctx, tag: int, vr: str | None, vpos: int, little: bool) -> int:
        """An element of undefined length: a sequence, or an item-encoded value (PS3.5 7.1)."""
        un = vr == "UN"
        if un:
            vr = "SQ"  # PS3.5 6.2.2: UN of undefined length is a sequence
        elif vr is None:
            vr = None if tag & 0x10000 else vrs.public_vr(tag)
            if vr is None:
                item = b"\xfe\xff\x00\xe0" if little else b"\xff\xfe\xe0\x00"
                is_item = self.state.size - vpos >= 4 and self.state.read(vpos, 4) == item
                vr = "SQ" if is_item else "UN"
        key = f"{tag:08X}"
        if vr == "SQ":
            items_little = True if un else little  # UN content is implicit VR LE (6.2.2)
            implicit = ctx.implicit or (un and not little)
            items, pos = self._sequence(ctx, tag, vpos, UNDEFINED, items_little, implicit)
            ctx.out[key] = {"vr": "SQ", "Value": items}
            return pos
        fragments, length, pos = self._undefined_value(tag, vpos, little)
        if vr in vrs.AMBIGUOUS_VRS:
            element = self._ambiguous(ctx, tag, vr, vpos, length, little, True)
        elif vr in vrs.BINARY_VRS or vr not in CONVERTERS:
            element = self._binary(ctx, tag, vr if vr in vrs.BINARY_VRS else "UN", vpos, length)
        else:
            raw = self.state.read(vpos, length)
            try:
                values = CONVERTERS[vr](raw, little, ctx.charset)
            except WrongLengthError:
                values, vr = None, "UN"
            element = {"vr": vr} if values is None else {"vr": vr, "Value": values}
        if ctx is self.root and tag in _PIXEL_TAGS:
            self.pixel = PixelFound(tag, vpos, length, fragments or [])
        ctx.out[key] = element
        return pos

    def _undefined_value(
        self, tag: int, vpos: int, little: bool
    ) -> tuple[list[ByteRange] | None, int, int]:
        """Items up to the Sequence Delimitation Item (PS3.5 A.4): (items, length, next).

        Falls back to searching for the delimiter when the value is not a series of items."""
        state = self.state
        header = _LE if little else _BE
        items: list[ByteRange] = []
        pos = vpos
        while state.size - pos >= 8:
            off = state.window(pos, 8, SCAN_CHUNK)
            group, element, length = header.unpack_from(state.buf, off)
            if group == 0xFFFE and element == 0xE0DD:
                return items, pos - vpos, pos + 8
            if group != 0xFFFE or element != 0xE000 or pos + 8 + length > state.size:
                break
            items.append((pos + 8, length))
            pos += 8 + length
            if len(items) > MAX_ITEMS:
                raise InvalidDicomError(f"more than {MAX_ITEMS} items in one value at {vpos}")
        delimiter = b"\xfe\xff\xdd\xe0" if little else b"\xff\xfe\xe0\xdd"
        found = state.find(delimiter, vpos)
        if found < 0 or found + 8 > state.size:
            raise InvalidDicomError(
                f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) of undefined length at offset "
                f"{vpos}: no Sequence Delimitation Item before the end of the data"
            )
        return None, found - vpos, found + 8

    def _sequence(
        self, ctx: Ctx, tag: int, vpos: int, length: int, little: bool, implicit: bool
    ) -> tuple[list[DicomJson], int]:
        """Items of a sequence (PS3.5 7.5); returns their JSON and the offset after it."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidDicomError(f"sequences nested deeper than {MAX_DEPTH} at offset {vpos}")
        state = self.state
        header = _LE if little else _BE
        end = -1 if length == UNDEFINED else vpos + length
        items: list[DicomJson] = []
        pos = vpos
        while end < 0 or pos < end:
            off = state.window(pos, 8)
            group, element, item_length = header.unpack_from(state.buf, off)
            if group == 0xFFFE and element == 0xE0DD:
                pos += 8
                break
            if group != 0xFFFE or element != 0xE000:
                raise InvalidDicomError(
                    f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}): expected an Item "
                    f"(FFFE,E000) at offset {pos}, found ({group:04X},{element:04X})"
                )
            start = pos + 8
            item_end = -1
            if item_length != UNDEFINED:
                item_end = start + item_length
                if item_end > state.size:
                    raise InvalidDicomError(
                        f"item at offset {pos}: length {item_length} runs past the end of "
                        f"the data ({state.size} bytes)"
                    )
            item_implicit = implicit
            if not implicit and state.size - start >= 6:
                vrb = state.read(start + 4, 2)
                item_implicit = not vrs.is_uppercase_vr(vrb[0], vrb[1])
            prefix = f"{ctx.prefix}{tag:08X}/{len(items)}/"
            child = Ctx(ctx, item_implicit, ctx.charset, prefix)
            pos = self._dataset(child, start, item_end, little)
            items.append(child.out)
        self.depth -= 1
        return items, pos
