"""Element values to DICOM JSON (PS3.18 F.2), straight from the encoded bytes.

Each converter takes the value field of one element and returns the JSON "Value" array, or
None when the value is empty (PS3.18 F.2.5: an empty attribute has no "Value"). The output is,
value for value, what pydicom 3 produces with `Dataset.to_json_dict`, because the archive's
metadata must not depend on which path built it; where pydicom raises instead of answering
(malformed numbers, empty items of a multi-valued PN/DS/IS), the choice made here is noted on the
converter. Text VRs other than the default repertoire are decoded with `pydicom.charset`
(PS3.5 6.1.2.4-5); the common single-byte case stays on a plain `bytes.decode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from struct import unpack
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes

#: PS3.5 6.1.3: control characters that reset ISO 2022 code extensions in text values.
_TEXT_DELIMS = {0x0D, 0x0A, 0x09, 0x0C}
_LATIN1 = frozenset({"iso8859", "latin_1", "iso_ir_100", "iso-8859-1"})
_ESC = b"\x1b"

Values = list[Any] | None
Converter = Callable[[bytes, bool, "Charset"], Values]


class WrongLengthError(ValueError):
    """A binary number value whose length is not a multiple of the value size (PS3.5 6.2)."""


class Charset:
    """Specific Character Set (0008,0005) in effect for a data set (PS3.5 6.1.2.5).

    `encodings` are Python codec names as produced by `pydicom.charset.convert_encodings`.
    Sequence items inherit their parent's character set unless they carry their own.
    """

    __slots__ = ("encodings", "fast")

    def __init__(self, encodings: Sequence[str] | None = None) -> None:
        self.encodings: list[str] = list(encodings) if encodings else ["iso8859"]
        self.fast = self.encodings[0] in _LATIN1

    @classmethod
    def from_terms(cls, terms: list[str] | None) -> Charset:
        """Build from the defined terms of (0008,0005); empty means the default repertoire."""
        if not terms:
            return DEFAULT_CHARSET
        try:
            return cls(convert_encodings(list(terms)))
        except (LookupError, ValueError):  # a term no codec knows (pydicom warns or raises)
            return DEFAULT_CHARSET

    def decode(self, raw: bytes) -> str:
        """Decode a text value; ISO 2022 escape sequences go through pydicom's decoder.

        Undecodable bytes become U+FFFD (pydicom warns and does the same), and a codec Python
        cannot even look up falls back to Latin-1: a wrong Specific Character Set must not make
        an otherwise readable object unreadable."""
        if self.fast and _ESC not in raw:
            return raw.decode("latin-1")
        try:
            return str(decode_bytes(raw, self.encodings, _TEXT_DELIMS))
        except (LookupError, ValueError):  # a codec name Python rejects
            return raw.decode("latin-1")


DEFAULT_CHARSET = Charset()


def _latin1(raw: bytes) -> str:
    return raw.decode("latin-1")


def strings(raw: bytes, little: bool, cs: Charset) -> Values:
    """AS, CS, DA, DT, TM, UI: default repertoire, trailing spaces/NULs removed, split on "\\"."""
    s = raw.decode("latin-1").rstrip(" \x00")
    if not s:
        return None
    return s.split("\\")


def ae_strings(raw: bytes, little: bool, cs: Charset) -> Values:
    """AE: leading and trailing spaces are not significant (PS3.5 Table 6.2-1)."""
    values = [v.strip() for v in raw.decode("latin-1").split("\\")]
    if len(values) == 1 and not values[0]:
        return None
    return values


def ur_string(raw: bytes, little: bool, cs: Charset) -> Values:
    """UR: a single value, trailing spaces not significant; a backslash is not a delimiter."""
    s = raw.decode("latin-1").rstrip()
    return [s] if s else None


def text_multi(raw: bytes, little: bool, cs: Charset) -> Values:
    """SH, LO, UC: Specific Character Set applies; each value loses trailing spaces."""
    values = [v.rstrip("\x00 ") for v in cs.decode(raw).split("\\")]
    if len(values) == 1 and not values[0]:
        return None
    return values


def text_single(raw: bytes, little: bool, cs: Charset) -> Values:
    """ST, LT, UT: one value, backslash is text (PS3.5 6.2), trailing spaces removed."""
    s = cs.decode(raw).rstrip("\x00 ")
    return [s] if s else None


def person_names(raw: bytes, little: bool, cs: Charset) -> Values:
    """PN as {"Alphabetic", "Ideographic", "Phonetic"} objects (PS3.18 F.2.2).

    Component groups are separated by "=" (PS3.5 6.2.1.1); trailing empty groups are dropped.
    An empty value inside a multi-valued PN becomes null (pydicom raises there).
    """
    s = cs.decode(raw.rstrip(b"\x00 "))
    if not s:
        return None
    out: list[Any] = []
    for value in s.split("\\"):
        groups = value.split("=")
        while groups and not groups[-1]:
            groups.pop()
        if not groups:
            out.append(None)
            continue
        name = {"Alphabetic": groups[0]}
        if len(groups) > 1:
            name["Ideographic"] = groups[1]
        if len(groups) > 2:
            name["Phonetic"] = groups[2]
        out.append(name)
    return out


def decimal_strings(raw: bytes, little: bool, cs: Charset) -> Values:
    """DS as JSON numbers (PS3.18 F.2.3).

    An empty item of a multi-valued DS becomes null; a value that is not a number keeps the
    whole element as strings, losing nothing (pydicom raises on both).
    """
    parts = raw.decode("latin-1").strip().rstrip(" \x00").split("\\")
    if len(parts) == 1 and not parts[0]:
        return None
    out: list[Any] = []
    for part in parts:
        if not part.strip():
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError:
            return parts
    return out


def integer_strings(raw: bytes, little: bool, cs: Charset) -> Values:
    """IS as JSON numbers (PS3.18 F.2.3); "1.0" is accepted and a fraction truncated, as
    pydicom does; non-numbers are kept as strings and empty items become null."""
    parts = raw.decode("latin-1").rstrip(" \x00").split("\\")
    if len(parts) == 1 and not parts[0].strip():
        return None
    out: list[Any] = []
    for part in parts:
        if not part.strip():
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            try:
                number = float(part)
            except ValueError:
                return parts
            if not math.isfinite(number):
                return parts
            out.append(int(number))
    return out


def _numbers(code: str, size: int) -> Converter:
    """US, SS, UL, SL, FL, FD, SV, UV in the data set's byte order (PS3.5 7.3)."""

    def convert(raw: bytes, little: bool, cs: Charset) -> Values:
        n, rest = divmod(len(raw), size)
        if rest:
            raise WrongLengthError(f"length {len(raw)} is not a multiple of {size}")
        if n == 0:
            return None
        return list(unpack(f"{'<' if little else '>'}{n}{code}", raw))

    return convert


def tags(raw: bytes, little: bool, cs: Charset) -> Values:
    """AT as "GGGGEEEE" strings (PS3.18 F.2.3); a partial trailing tag is ignored."""
    n = len(raw) // 4
    if n == 0:
        return None
    words = unpack(f"{'<' if little else '>'}{2 * n}H", raw[: 4 * n])
    return [f"{words[i]:04X}{words[i + 1]:04X}" for i in range(0, 2 * n, 2)]


NUMBER_FORMATS = {
    "US": ("H", 2),
    "SS": ("h", 2),
    "UL": ("L", 4),
    "SL": ("l", 4),
    "FL": ("f", 4),
    "FD": ("d", 8),
    "SV": ("q", 8),
    "UV": ("Q", 8),
}

CONVERTERS: dict[str, Converter] = {
    "AE": ae_strings,
    "AS": strings,
    "CS": strings,
    "DA": strings,
    "DT": strings,
    "TM": strings,
    "UI": strings,
    "UR": ur_string,
    "SH": text_multi,
    "LO": text_multi,
    "UC": text_multi,
    "ST": text_single,
    "LT": text_single,
    "UT": text_single,
    "PN": person_names,
    "DS": decimal_strings,
    "IS": integer_strings,
    "AT": tags,
}
for _vr, (_code, _size) in NUMBER_FORMATS.items():
    CONVERTERS[_vr] = _numbers(_code, _size)


def convert_numbers(raw: bytes, little: bool, vr: str) -> Values:
    """Decode a binary number VR (used after resolving "US or SS")."""
    return CONVERTERS[vr](raw, little, DEFAULT_CHARSET)


def charset_terms(raw: bytes) -> list[str]:
    """The defined terms of (0008,0005), always read in the default repertoire (PS3.5 6.1.2.5)."""
    return strings(raw, True, DEFAULT_CHARSET) or []
