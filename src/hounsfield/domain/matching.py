"""The reference matcher: what a query means, entity by entity (PS3.4 C.2.2.2).

Every index adapter compiles the query AST to its own language (SQL, ...) and is tested with
Hypothesis against this module, so this code favours being obviously right over being fast.
An entity is a DICOM JSON object (PS3.18 F.2): {"GGGGEEEE": {"vr": "XX", "Value": [...]}}.

Rules, with the clause each one follows:

- Universal (C.2.2.2.3) and a wild card made only of "*" (C.2.2.2.4 Note 1) match every
  entity, whether the attribute is present, empty or absent.
- Any other key needs a value to compare with: an entity whose attribute is absent or has a
  zero-length value does not match it. Matching such entities is what Empty Value Matching
  adds (C.2.2.2.7), and it needs Extended Negotiation (PS3.18 8.3.4.5 "emptyvaluematching"),
  which is not offered; the Worklist rule K.2.2.1.1.1 states the same default ("the unknown
  value shall fail to match any Matching Key value").
- A multi-valued entity attribute matches when any one of its values matches.
- Single Value (C.2.2.2.1) and Wild Card (C.2.2.2.4) matching are case-sensitive, except for
  PN which is case-insensitive, as C.2.2.2.1 permits for PN. Padding that PS3.5 Table 6.2-1
  declares insignificant (spaces, the NUL after a UID) is ignored on both sides.
- PN: a key without "=" is compared with each component group of the stored name
  (Alphabetic, Ideographic, Phonetic) and matches if one group matches; a key with "=" is
  compared group by group, an empty key group matching anything. Trailing "^" separators
  are insignificant ("Doe^John^^" equals "Doe^John", PS3.5 6.2.1.1).
- DA, TM, DT (C.2.2.2.5): values become spans (`domain.temporal`). A stored value counts as
  its first instant ("10" as a TM is 10:00:00.000000). A lower bound counts as its first
  instant, an upper bound as its last ("-10" includes 10:59:59.999999). A single value key
  is the range from itself to itself, so "1030" matches any time in that minute. A DT is
  compared in UTC when both the bound and the stored value carry an offset, and naively (as
  local times) otherwise: C.2.2.2.5.3 d takes offsets into account, but a value without an
  offset has no defined zone to convert from.
- Numbers (IS, DS, US, ...) compare as decimal numbers, so "1.0" equals 1.
- Sequence Matching (C.2.2.2.6): at least one item must match all the item keys; a sequence
  key without item keys matches every entity.
- Combined date-time matching (C.2.2.2.5.1, negotiated): the entity's date and its partner
  time become one DT ("20060706" and "0930" -> "200607060930"; a date without a time is the
  whole day, counted as its first instant) and are range matched against the DT bounds. An
  entity without the date does not match.

Fuzzy matching (PS3.18 8.3.4.2, PS3.4 C.2.2.2.1.1 leaves the method to the implementation),
applied to PN keys only:

- both sides are folded: Unicode NFKD, combining marks dropped, case-folded, apostrophes
  removed ("Zoë O'Brien" -> "zoe obrien");
- a single value key matches when every word of the key is the start of some word of the
  stored name (any group); words are separated by "^", "=", spaces and punctuation. So
  "joh do", "DOE^J" and "doe" all match "Doe^John";
- a wild card key is matched on the folded strings, so it is also accent-insensitive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from hounsfield.domain.errors import InvalidQueryError
from hounsfield.domain.keyvalues import (
    NUMERIC_VRS,
    RANGE_VRS,
    base_vr,
    is_all_stars,
    strip_padding,
)
from hounsfield.domain.model import DicomJson
from hounsfield.domain.query import (
    DateTimeRange,
    MatchKey,
    Range,
    SequenceMatch,
    SingleValue,
    UidList,
    Universal,
    Wildcard,
)
from hounsfield.domain.temporal import Span, parse_temporal, utc

_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_WORD_SPLIT = re.compile(r"[\W_]+")
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc")
_Compare = Callable[[str, str], bool]


def matches(query_keys: Sequence[MatchKey], entity: DicomJson, *, fuzzy: bool = False) -> bool:
    """Whether `entity` matches every key (keys combine with AND, PS3.4 C.2.2.2)."""
    return all(match_key(key, entity, fuzzy) for key in query_keys)


def match_key(key: MatchKey, entity: DicomJson, fuzzy: bool = False) -> bool:
    """Whether `entity` matches one key; see the module docstring for the rules."""
    matcher = key.matcher
    if isinstance(matcher, Universal):
        return True
    if isinstance(matcher, Wildcard) and is_all_stars(matcher.pattern):
        return True
    element = _element(entity, key.tag)
    if isinstance(matcher, SequenceMatch):
        if not matcher.keys:
            return True
        items = element.get("Value") if element else None
        return any(
            isinstance(item, dict) and matches(matcher.keys, item, fuzzy=fuzzy)
            for item in items or ()
        )
    if isinstance(matcher, DateTimeRange):
        return _match_date_time(matcher, element, _element(entity, matcher.time_tag))
    vr = base_vr(key.vr)
    raw_values = [v for v in (element.get("Value") or ()) if v is not None] if element else []
    if vr == "PN":
        names = [n for n in (_pn_groups(v) for v in raw_values) if any(n)]
        return any(_match_pn(matcher, name, fuzzy) for name in names)
    values = [t for t in (_as_text(vr, v) for v in raw_values) if t]
    if not values:
        return False
    if isinstance(matcher, Range):
        return _match_range(vr, matcher.lower, matcher.upper, values)
    if isinstance(matcher, SingleValue):
        if vr in RANGE_VRS:
            return _match_range(vr, matcher.value, matcher.value, values)
        return _match_single(vr, strip_padding(vr, matcher.value), values)
    if isinstance(matcher, UidList):
        wanted = {strip_padding(vr, uid) for uid in matcher.uids}
        return any(v in wanted for v in values)
    pattern = _wildcard_regex(strip_padding(vr, matcher.pattern), ignore_case=False)
    return any(pattern.fullmatch(v) for v in values)


def _texts(element: dict[str, Any] | None, vr: str) -> list[str]:
    values = element.get("Value") if element else None
    return [t for t in (_as_text(vr, v) for v in values or () if v is not None) if t]


def _match_date_time(
    matcher: DateTimeRange, date: dict[str, Any] | None, time: dict[str, Any] | None
) -> bool:
    """Combined date-time matching (C.2.2.2.5.1): each stored date with the first valid
    stored time, as one DT (legacy "YYYY.MM.DD" and "HH:MM:SS" forms made canonical)."""
    times = [t.replace(":", "") for t in _texts(time, "TM")]
    clock = next((t for t in times if parse_temporal("TM", t) is not None), "")
    combined = []
    for stored in _texts(date, "DA"):
        day = stored if parse_temporal("DA", stored) is not None else stored.replace(".", "")
        if parse_temporal("DA", day) is not None:
            combined.append(day + clock)
    return bool(combined) and _match_range("DT", matcher.lower, matcher.upper, combined)


def _element(entity: DicomJson, tag: str) -> dict[str, Any] | None:
    """The entity's element for `tag`; PS3.18 F.2.1.1 spells tags in upper case."""
    found = entity.get(tag)
    if found is None:
        found = entity.get(tag.upper())
    return found if isinstance(found, dict) else None


def _as_text(vr: str, value: object) -> str:
    """One stored value as a string without its insignificant padding ("" when unusable)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        text = strip_padding(vr, value)
        return text.upper() if vr == "AT" else text
    return ""


def _match_single(vr: str, key: str, values: Iterable[str]) -> bool:
    """Single Value Matching (C.2.2.2.1) for every VR but PN, DA, TM and DT."""
    if vr in NUMERIC_VRS:
        wanted = _number(key)
        if wanted is not None:
            return any(_number(v) == wanted for v in values)
    if vr == "AT":
        key = key.upper()
    return any(v == key for v in values)


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _bound(vr: str, text: str | None) -> Span | None:
    """A query bound as a span; an invalid bound is a caller error, not a non-match."""
    if text is None:
        return None
    span = parse_temporal(vr, text.strip())
    if span is None:
        raise InvalidQueryError(f"invalid {vr} value {text!r} in a range key")
    return span


def _match_range(vr: str, lower: str | None, upper: str | None, values: Iterable[str]) -> bool:
    """Range Matching (C.2.2.2.5) of stored DA, TM or DT values; see the module docstring."""
    if vr not in RANGE_VRS:
        raise InvalidQueryError(f"range matching is only defined for DA, TM and DT, not {vr}")
    low = _bound(vr, lower)
    high = _bound(vr, upper)
    for value in values:
        stored = parse_temporal(vr, value, lenient=True)
        if stored is None:
            continue
        if low is not None and _instant(low.floor, low, stored) > _instant(
            stored.floor, stored, low
        ):
            continue
        if high is not None and _instant(stored.floor, stored, high) > _instant(
            high.ceil, high, stored
        ):
            continue
        return True
    return False


def _instant(instant: int, own: Span, other: Span) -> int:
    """An instant ready to compare with `other`: in UTC only when both sides have offsets."""
    if own.offset is not None and other.offset is not None:
        return utc(instant, own.offset)
    return instant


def _pn_groups(value: object) -> tuple[str, str, str]:
    """The three component groups of a stored PN, normalised (PS3.18 F.2.2, PS3.5 6.2.1.1).

    DICOM JSON gives {"Alphabetic": ..., "Ideographic": ..., "Phonetic": ...}; a bare string
    ("Doe^John=..." as some encoders write) is split on "=".
    """
    if isinstance(value, dict):
        parts = [value.get(group) for group in _PN_GROUPS]
    elif isinstance(value, str):
        parts = list(value.split("=", 2))
    else:
        return ("", "", "")
    parts += [None] * (3 - len(parts))
    a, i, p = (_pn_normal(part) if isinstance(part, str) else "" for part in parts[:3])
    return (a, i, p)


def _pn_normal(group: str) -> str:
    """A PN group without padding spaces and trailing empty components."""
    return group.strip(" ").rstrip("^").rstrip(" ")


def _match_pn(matcher: object, name: tuple[str, str, str], fuzzy: bool) -> bool:
    """Single value and wild card matching of one stored person name (C.2.2.2.1, C.2.2.2.4)."""
    if isinstance(matcher, SingleValue):
        if fuzzy:
            return _fuzzy_name(matcher.value, name)
        return _by_group(matcher.value, name, lambda key, group: key.casefold() == group.casefold())
    if isinstance(matcher, Wildcard):
        fold = _fold if fuzzy else (lambda text: text)

        def wild(key: str, group: str) -> bool:
            regex = _wildcard_regex(fold(key), ignore_case=True)
            return regex.fullmatch(fold(group)) is not None

        return _by_group(matcher.pattern, name, wild)
    if isinstance(matcher, UidList):
        return any(_match_pn(SingleValue(uid), name, fuzzy) for uid in matcher.uids)
    raise InvalidQueryError(f"{type(matcher).__name__} matching is not defined for PN")


def _by_group(key: str, name: tuple[str, str, str], same: _Compare) -> bool:
    """Apply `same` to the key and the stored groups, per the PN rule of the module docstring."""
    if "=" not in key:
        wanted = _pn_normal(key)
        return any(group and same(wanted, group) for group in name)
    wanted_groups = [_pn_normal(part) for part in key.split("=", 2)]
    return any(wanted_groups) and all(
        not wanted or same(wanted, group)
        for wanted, group in zip(wanted_groups, name, strict=False)
    )


def _fold(text: str) -> str:
    """Accent- and case-insensitive form of a name: NFKD, no combining marks, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _words(text: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(_fold(text)) if w]


def _fuzzy_name(key: str, name: tuple[str, str, str]) -> bool:
    """Every word of the key starts some word of the stored name (module docstring)."""
    wanted = _words(key)
    stored = [word for group in name for word in _words(group)]
    return bool(wanted) and all(any(s.startswith(w) for s in stored) for w in wanted)


@lru_cache(maxsize=1024)
def _wildcard_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """Wild card pattern to regex: "*" any run, "?" one character, the rest literal (C.2.2.2.4)."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)
