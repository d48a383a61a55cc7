"""From a key value as a client wrote it to a matcher of the query AST (PS3.4 C.2.2.2).

QIDO-RS (PS3.18 8.3.4.1) and C-FIND (PS3.4 C.4.1.2) both carry key values as strings; which
kind of matching a string asks for depends only on the attribute's VR and on the special
characters in it, so the decision lives here, once, for both front ends:

- zero length, or only "*" -> Universal (C.2.2.2.3; C.2.2.2.4 Note: "*" equals universal)
- UI with "\\" or "," separators -> UidList (C.2.2.2.2; PS3.18 8.3.4.1 uid-list-match "1#value")
- DA, TM, DT with "-" -> Range (C.2.2.2.5)
- AE CS LO LT PN SH ST UC UR UT with "*" or "?" -> Wildcard (C.2.2.2.4 lists these VRs)
- anything else -> SingleValue (C.2.2.2.1), after validating the value for its VR (PS3.5 6.2)

A value that is not valid for its VR raises `InvalidQueryError` naming the attribute, so the
front end answers 400 (PS3.18 8.3: "If a supported Query Parameter has an invalid value, the
origin server shall return a 400") or C-FIND status A900/C000.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from hounsfield.domain.errors import InvalidQueryError
from hounsfield.domain.query import Matcher, Range, SingleValue, UidList, Universal, Wildcard
from hounsfield.domain.temporal import Span, parse_temporal, utc

#: VRs on which Wild Card Matching applies (PS3.4 C.2.2.2.4).
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
#: VRs on which Range Matching applies (PS3.4 C.2.2.2.5).
RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: Single-valued text VRs: a backslash is an ordinary character there (PS3.5 6.2).
TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
#: VRs whose values are numbers; DICOM JSON carries most of them as JSON numbers (PS3.18 F.2.3).
NUMERIC_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "SV", "UV", "FL", "FD"})
#: VRs that cannot be matched at all: their values are bytes (PS3.4 C.2.2.2.4 excludes them).
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: VRs whose leading spaces are padding too, not only trailing ones (PS3.5 Table 6.2-1).
STRIP_BOTH_VRS = frozenset(
    {"AE", "CS", "DS", "IS", "LO", "PN", "SH", "UC", "DA", "TM", "DT", "AS", "AT"}
)

_INT_RANGES = {
    "US": (0, 2**16 - 1),
    "UL": (0, 2**32 - 1),
    "UV": (0, 2**64 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "SV": (-(2**63), 2**63 - 1),
    "IS": (-(2**31), 2**31 - 1),
}
_INT = re.compile(r"[+-]?\d+")
_DS = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_UID = re.compile(r"\d+(?:\.\d+)*")
_CS = re.compile(r"[A-Z0-9 _*?]*")
_AS = re.compile(r"\d{3}[DWMY]")
_AT = re.compile(r"[0-9A-Fa-f]{8}")
# C0 controls other than ESC (ISO 2022 escapes) are not allowed in short strings (PS3.5 6.1.3);
# the text VRs may also hold TAB, LF, FF and CR.
_CONTROL = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_UID_MAX = 64
_PN_GROUPS = 3
_PN_COMPONENTS = 5


def base_vr(vr: str) -> str:
    """The VR to match with, for dictionary entries such as "US or SS" (take the first)."""
    return vr.split(" or ", 1)[0].strip()


def strip_padding(vr: str, text: str) -> str:
    """Remove the padding the VR declares insignificant (PS3.5 Table 6.2-1).

    Leading and trailing spaces for most string VRs; trailing only for ST, LT, UT and UR;
    trailing NUL and spaces for UI (a UID is padded with one NUL to an even length).
    """
    if vr == "UI":
        return text.rstrip("\x00 ")
    if vr in TEXT_VRS:
        return text.rstrip(" ")
    return text.strip(" ")


def is_all_stars(pattern: str) -> bool:
    """A wild card made only of "*" matches every entity (PS3.4 C.2.2.2.4, Note 1)."""
    return bool(pattern) and not pattern.strip("*")


def _invalid(attribute: str, vr: str, value: str, why: str) -> InvalidQueryError:
    return InvalidQueryError(f"invalid value {value!r} for {attribute} (VR {vr}): {why}")


def _check_uid(attribute: str, uid: str) -> None:
    """UIDs are digits and dots, no empty component, at most 64 characters (PS3.5 9.1).

    Components with a leading zero are accepted although PS3.5 9.1 forbids them: such UIDs
    exist in stored objects, and a client must be able to look them up.
    """
    if not _UID.fullmatch(uid) or len(uid) > _UID_MAX:
        raise _invalid(attribute, "UI", uid, "a UID is digits and dots, at most 64 characters")


def _check_number(attribute: str, vr: str, value: str) -> None:
    """IS, DS and the binary numeric VRs, with the integer ranges of PS3.5 Table 6.2-1."""
    if vr in _INT_RANGES:
        lo, hi = _INT_RANGES[vr]
        if not _INT.fullmatch(value) or not lo <= int(value) <= hi:
            raise _invalid(attribute, vr, value, f"expected an integer from {lo} to {hi}")
        return
    if vr == "DS" and not _DS.fullmatch(value):
        raise _invalid(attribute, vr, value, "expected a decimal number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _invalid(attribute, vr, value, "expected a number") from None
    if not number.is_finite():
        raise _invalid(attribute, vr, value, "expected a finite number")


def _check_string(attribute: str, vr: str, value: str) -> None:
    """Character repertoire checks for the string VRs; wild cards are allowed by the caller.

    Lengths are not checked: PS3.4 C.2.2.2 lets a Key Attribute exceed its VR's length.
    """
    controls = _TEXT_CONTROL if vr in TEXT_VRS else _CONTROL
    if controls.search(value):
        raise _invalid(attribute, vr, value, "control characters are not allowed")
    if vr == "CS" and not _CS.fullmatch(value):
        raise _invalid(
            attribute, vr, value, "CS allows upper-case letters, digits, space and underscore"
        )
    if vr == "AS" and not _AS.fullmatch(value):
        raise _invalid(attribute, vr, value, "AS is three digits and one of D, W, M, Y")
    if vr == "AT" and not _AT.fullmatch(value):
        raise _invalid(attribute, vr, value, "AT is a tag of 8 hexadecimal digits")
    if vr == "PN":
        groups = value.split("=")
        if len(groups) > _PN_GROUPS or any(g.count("^") >= _PN_COMPONENTS for g in groups):
            raise _invalid(
                attribute, vr, value, "PN has at most 3 '='-separated groups of 5 components"
            )


def _ordered(low: Span, high: Span) -> bool:
    """Whether a range's bounds are in order, comparing DT bounds in UTC when both have offsets."""
    if low.offset is not None and high.offset is not None:
        return utc(low.floor, low.offset) <= utc(high.ceil, high.offset)
    return low.floor <= high.ceil


def _temporal_range(attribute: str, vr: str, value: str) -> Range | None:
    """Read "<a>-<b>", "-<b>" or "<a>-" (PS3.4 C.2.2.2.5), or None if `value` is no range.

    A DT may carry a negative UTC offset ("20240101120000-0500"), so for DT every "-" is tried
    as the range separator; a value with exactly one valid split is a range, a value that
    only reads as one DT is a single value. Bounds must be in order: a range crossing
    midnight is not supported (C.2.2.2.5.2).
    """
    found: list[Range] = []
    for at, char in enumerate(value):
        if char != "-":
            continue
        lower, upper = value[:at].strip(), value[at + 1 :].strip()
        if not lower and not upper:
            raise _invalid(attribute, vr, value, "a range needs at least one bound")
        low = parse_temporal(vr, lower) if lower else None
        high = parse_temporal(vr, upper) if upper else None
        if (lower and low is None) or (upper and high is None):
            continue
        if low is not None and high is not None and not _ordered(low, high):
            if vr == "DT":
                continue  # maybe the "-" belongs to an offset
            raise _invalid(attribute, vr, value, "the lower bound is after the upper bound")
        found.append(Range(lower or None, upper or None))
    if len(found) > 1:
        raise _invalid(attribute, vr, value, "ambiguous range; write UTC offsets as +ZZXX")
    return found[0] if found else None


def _temporal(attribute: str, vr: str, value: str) -> Matcher:
    """Single value or range for DA, TM, DT; '*' and '?' are not allowed (C.2.2.2.4)."""
    if "*" in value or "?" in value:
        raise _invalid(attribute, vr, value, f"wild cards are not allowed for {vr}")
    if "-" in value:
        ranged = _temporal_range(attribute, vr, value)
        if ranged is not None:
            return ranged
        if vr != "DT" or parse_temporal(vr, value) is None:
            raise _invalid(attribute, vr, value, _TEMPORAL_FORMS[vr])
    elif parse_temporal(vr, value) is None:
        raise _invalid(attribute, vr, value, _TEMPORAL_FORMS[vr])
    return SingleValue(value)


_TEMPORAL_FORMS = {
    "DA": "expected YYYYMMDD or a range YYYYMMDD-YYYYMMDD with an optional open end",
    "TM": "expected HH[MM[SS[.FFFFFF]]] or a range of them within one day",
    "DT": "expected YYYY[MM[DD[HH[MM[SS[.FFFFFF]]]]]][+ZZXX] or a range of them",
}


def matcher_for(vr: str, value: str, *, attribute: str) -> Matcher:
    """The matcher a key value asks for, given the attribute's VR (PS3.4 C.2.2.2).

    `attribute` names the key in error messages (a keyword, a tag or a dotted path). Values
    of SQ attributes are not strings: a zero-length one is universal, anything else is an
    error (sequence keys are built from their item keys, C.2.2.2.6). Multiple values ("\\")
    are refused except for UIDs, since their meaning is undefined without the Multiple Value
    Matching extended negotiation (C.2.2.2.8, Note 4).
    """
    vr = base_vr(vr)
    text = strip_padding(vr, value)
    if not text or is_all_stars(text):
        return Universal()
    if vr == "SQ":
        raise _invalid(attribute, vr, value, "a sequence is matched through its item keys")
    if vr in BINARY_VRS:
        raise _invalid(attribute, vr, value, f"matching on VR {vr} is not supported")
    if vr == "UI":
        uids = [u.strip(" \x00") for u in re.split(r"[\\,]", text)]
        for uid in uids:
            _check_uid(attribute, uid)
        unique = tuple(dict.fromkeys(uids))
        return SingleValue(unique[0]) if len(unique) == 1 else UidList(unique)
    if vr in RANGE_VRS:
        return _temporal(attribute, vr, text)
    if "\\" in text and vr not in TEXT_VRS:
        raise _invalid(
            attribute, vr, value, "multiple values are only supported for UID list matching"
        )
    wild = "*" in text or "?" in text
    if wild and vr not in WILDCARD_VRS:
        raise _invalid(attribute, vr, value, f"wild cards are not allowed for {vr}")
    if vr in NUMERIC_VRS:
        _check_number(attribute, vr, text)
        return SingleValue(text)
    _check_string(attribute, vr, text)
    return Wildcard(text) if wild else SingleValue(text)
