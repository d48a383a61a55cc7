"""C-FIND identifiers to the query AST, and matched entities back to response identifiers.

C-FIND and QIDO-RS share the AST and the matcher (DESIGN.md key idea 2); this module is the
C-FIND half of the translation, for the Patient Root and Study Root models (PS3.4 C.6.1,
C.6.2). It takes the request identifier as DICOM JSON (PS3.18 F.2; `decode_identifier` reads
the received bytes with the header walker, which applies the identifier's Specific Character
Set, so every value here is already Unicode) and decides, key by key:

- Query/Retrieve Level (0008,0052) is required and must be a level of the model; otherwise
  A900 "Identifier does not match SOP Class" (PS3.4 C.4.1.1.4, C.4.1.1.3.1).
- Hierarchical search (C.4.1.3.1.1, the baseline; relational search needs Extended
  Negotiation, C.4.1.2.2.2): the Unique Key of every level above the query level must be
  present with a single value; other keys of a higher level may be requested (universal, as
  return keys: C.2.2.1.2) but not matched on; keys of a lower level may be requested but not
  matched on. Each violation is A900 naming the Offending Element (PS3.7 C.4.1.1). With
  `relational=True` (negotiated) keys of the level and of every level above it may match.
- The Unique Key of the query level takes Single Value, Universal or, for UIDs, List of UID
  matching (C.2.2.1.1, C.6.1.1.x "U"); a wild card there is A900.
- Every other value becomes a matcher through `keyvalues.matcher_for`, the same decision
  QIDO-RS makes (C.2.2.2); an invalid value is A900 with the attribute in the comment.
- A sequence key with one item is Sequence Matching over its item keys (C.2.2.2.6); a zero
  length sequence, one empty item, or an item of only universal keys asks for the sequence
  to be returned (C.2.2.1.2 Note 4). More than one item is A900.
- Options the association negotiated (SOP Class Extended Negotiation, C.5.1.1.2):
  `relational` (above), `fuzzy` (fuzzy semantic matching of person names, C.2.2.2.1.1, the
  matcher's method) and `combined_datetime` (C.2.2.2.5.1: a date key and its paired time key
  with values are matched as one DT range; a time key alone, or with a universal date, is
  matched on its own as without the option).

The response identifier (C.4.1.1.3.2) holds exactly the requested keys with the entity's
values (zero length where the entity lacks the attribute), the Query/Retrieve Level, the
Retrieve AE Title, and Specific Character Set when a value needs it (see `response_identifier`).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR
from pydicom.valuerep import format_number_as_ds

from hounsfield.domain.dicomwalk import walk
from hounsfield.domain.errors import InvalidDicomError, InvalidQueryError
from hounsfield.domain.keyvalues import base_vr, matcher_for
from hounsfield.domain.levels import (
    INSTANCE_AVAILABILITY,
    RETRIEVE_AE_TITLE,
    SPECIFIC_CHARACTER_SET,
)
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.qrmodel import (
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    QUERY_RETRIEVE_LEVEL,
    UNABLE_TO_PROCESS,
    Model,
    QueryRetrieveError,
    depth,
    unique_key,
)
from hounsfield.domain.query import (
    DateTimeRange,
    Matcher,
    MatchKey,
    Query,
    Range,
    SequenceMatch,
    SingleValue,
    UidList,
    Universal,
)

#: Elements of an identifier that are not keys: they say how to read the others
#: (Specific Character Set, Query/Retrieve Level, Timezone Offset From UTC).
NOT_KEYS = frozenset({SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL, "00080201"})
_UTF8 = "ISO_IR 192"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_LENGTH_TO_END_TAG = "00080001"
_LENGTH_TO_END = {
    "implicit": b"\x08\x00\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00",
    "explicit": b"\x08\x00\x01\x00UL\x04\x00\x00\x00\x00\x00",
    "big": b"\x00\x08\x00\x01UL\x00\x04\x00\x00\x00\x00",
}
_HUGE = 1 << 62
#: Date attributes and their paired time attributes for combined date-time matching
#: (PS3.4 C.2.2.2.5.1 names Study Date and Study Time as the example pair).
DATE_TIME_PAIRS: Mapping[str, str] = {
    "00080020": "00080030",  # Study Date, Study Time
    "00080021": "00080031",  # Series Date, Series Time
    "00080022": "00080032",  # Acquisition Date, Acquisition Time
    "00080023": "00080033",  # Content Date, Content Time
    "00100030": "00100032",  # Patient's Birth Date, Patient's Birth Time
}


@dataclass(frozen=True, slots=True)
class RequestedKey:
    """A key to echo in responses; `items` are the requested keys of a sequence's item
    (None: return the whole sequence as stored)."""

    tag: str
    vr: str
    items: tuple[RequestedKey, ...] | None = None


@dataclass(frozen=True, slots=True)
class FindRequest:
    """A C-FIND request understood: the query to run and what each response must hold."""

    model: Model
    level: Level
    query: Query
    requested: tuple[RequestedKey, ...]
    character_set: tuple[str, ...] = ()


def fail(comment: str, *offending: str) -> QueryRetrieveError:
    """A900 "Identifier does not match SOP Class" (PS3.4 C.4.1.1.4, C.4.2.1.5)."""
    return QueryRetrieveError(IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, comment, offending)


def decode_identifier(data: bytes, transfer_syntax: str) -> DicomJson:
    """The DICOM JSON of identifier bytes received in `transfer_syntax` (PS3.7 6.3.1).

    The walker decodes strings with the identifier's own Specific Character Set (PS3.5 6.1.2).
    It reads bare data sets only when they start like a stored object (group 0008 or lower);
    an identifier may start with (0010,0010) or be empty, so a zero Length to End (0008,0001)
    element goes first and is dropped afterwards.
    Bytes it cannot read are C000 "unable to process" (PS3.4 C.4.1.1.4).
    """
    if transfer_syntax == DEFLATED_EXPLICIT_LE:
        try:
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data)
        except zlib.error as exc:
            raise QueryRetrieveError(UNABLE_TO_PROCESS, f"bad deflated identifier: {exc}") from exc
        transfer_syntax = EXPLICIT_LE
    try:
        parsed = walk(
            io.BytesIO(_LENGTH_TO_END[_encoding(transfer_syntax)] + data),
            bulk_threshold=_HUGE,
            fallback_transfer_syntax=transfer_syntax,
            require_uids=False,
        )
    except (InvalidDicomError, ValueError) as exc:
        raise QueryRetrieveError(UNABLE_TO_PROCESS, f"unreadable identifier: {exc}") from exc
    found = parsed.dataset_json
    found.pop(_LENGTH_TO_END_TAG, None)
    return found


def _encoding(transfer_syntax: str) -> str:
    if transfer_syntax == IMPLICIT_LE:
        return "implicit"
    return "big" if transfer_syntax == EXPLICIT_BE else "explicit"


def key_text(element: Mapping[str, Any]) -> str:
    """A key's value as the string a client wrote (PS3.5 6.2): values joined with "\\",
    person names as "Alphabetic=Ideographic=Phonetic", numbers in decimal form."""
    parts: list[str] = []
    for value in element.get("Value") or ():
        if value is None:
            parts.append("")
        elif isinstance(value, dict):
            groups = [str(value.get(g) or "") for g in ("Alphabetic", "Ideographic", "Phonetic")]
            parts.append("=".join(groups).rstrip("="))
        else:
            parts.append(str(value))
    return "\\".join(parts)


def level_of_identifier(identifier: DicomJson, model: Model) -> Level:
    """Query/Retrieve Level (0008,0052): required, and one of the model's levels."""
    text = key_text(identifier.get(QUERY_RETRIEVE_LEVEL, {})).strip()
    if not text:
        raise fail("Query/Retrieve Level (0008,0052) is missing", QUERY_RETRIEVE_LEVEL)
    try:
        level = Level(text)
    except ValueError:
        raise fail(f"unknown Query/Retrieve Level {text!r}", QUERY_RETRIEVE_LEVEL) from None
    if level not in model.levels:
        raise fail(f"level {text} is not in the {model.value} model", QUERY_RETRIEVE_LEVEL)
    return level


def is_key(tag: str) -> bool:
    """Whether an identifier element is a key (not a command, meta or group length element)."""
    return tag not in NOT_KEYS and not tag.endswith("0000") and not tag.startswith(("0000", "0002"))


def element_vr(tag: str, element: Mapping[str, Any]) -> str:
    """The VR to match with: the encoded one, else the data dictionary's (implicit VR)."""
    vr = element.get("vr")
    if isinstance(vr, str) and vr and vr != "UN":
        return base_vr(vr)
    try:
        return base_vr(str(dictionary_VR(int(tag, 16))))
    except KeyError:
        return "UN"


def _item_keys(tag: str, element: Mapping[str, Any]) -> tuple[Matcher, RequestedKey]:
    """Sequence Matching (C.2.2.2.6) or a sequence return key (C.2.2.1.2 Note 4)."""
    items = element.get("Value") or []
    if len(items) > 1:
        raise fail(f"sequence key ({tag}) has more than one item", tag)
    if not items or not items[0]:
        return Universal(), RequestedKey(tag, "SQ")
    keys: list[MatchKey] = []
    requested: list[RequestedKey] = []
    for sub_tag, sub in sorted(items[0].items()):
        matcher, wanted = key_matcher(sub_tag, sub)
        requested.append(wanted)
        if not isinstance(matcher, Universal):
            keys.append(MatchKey(sub_tag, wanted.vr, matcher))
    matcher = SequenceMatch(tuple(keys)) if keys else Universal()
    return matcher, RequestedKey(tag, "SQ", tuple(requested))


def key_matcher(tag: str, element: Mapping[str, Any]) -> tuple[Matcher, RequestedKey]:
    """The matcher of one identifier element and what to echo for it; A900 when invalid."""
    vr = element_vr(tag, element)
    if vr == "SQ":
        return _item_keys(tag, element)
    if vr == "UN":
        if key_text(element):
            raise fail(f"cannot match on ({tag}) of unknown VR", tag)
        return Universal(), RequestedKey(tag, vr)
    try:
        matcher = matcher_for(vr, key_text(element), attribute=f"({tag[:4]},{tag[4:]})")
    except InvalidQueryError as exc:
        raise fail(str(exc), tag) from None
    return matcher, RequestedKey(tag, vr)


def _check_key(
    tag: str, matcher: Matcher, model: Model, owner: Level, level: Level, relational: bool
) -> None:
    """The hierarchical rules of the module docstring, for one key."""
    if isinstance(matcher, Universal):
        return  # a return key may be asked for at any level (C.2.2.1.2)
    if depth(owner) > depth(level):
        raise fail(f"({tag}) is a {owner.value} key, below the {level.value} level", tag)
    is_unique = owner in model.levels and tag == unique_key(owner)
    if owner is level:
        if is_unique and not isinstance(matcher, SingleValue | UidList):
            raise fail(f"unique key ({tag}): single value or UID list only", tag)
        return
    if relational:
        return
    if not is_unique:
        raise fail(f"({tag}) is a {owner.value} key, above the {level.value} level", tag)
    if not isinstance(matcher, SingleValue):
        raise fail(f"unique key ({tag}) above the level needs a single value", tag)


def _bounds(matcher: Matcher) -> tuple[str | None, str | None] | None:
    if isinstance(matcher, Range):
        return matcher.lower, matcher.upper
    if isinstance(matcher, SingleValue):
        return matcher.value, matcher.value
    return None


def combine_date_time(keys: list[MatchKey]) -> list[MatchKey]:
    """Merge each date key and its paired time key into one `DateTimeRange` key
    (C.2.2.2.5.1): the lower bound is the lower date followed by the lower time, the upper
    bound the upper date followed by the upper time; an open time end leaves the date alone
    (the whole day), an open date end leaves that end open."""
    by_tag = {key.tag: key for key in keys}
    merged: list[MatchKey] = []
    used: set[str] = set()
    for key in keys:
        time_tag = DATE_TIME_PAIRS.get(key.tag)
        time_key = by_tag.get(time_tag) if time_tag else None
        dates = _bounds(key.matcher)
        times = _bounds(time_key.matcher) if time_key is not None else None
        if time_tag is None or dates is None or times is None:
            merged.append(key)
            continue
        used.add(time_tag)
        lower = dates[0] + (times[0] or "") if dates[0] else None
        upper = dates[1] + (times[1] or "") if dates[1] else None
        matcher = DateTimeRange(time_tag, Range(dates[0], dates[1]), lower, upper)
        merged.append(MatchKey(key.tag, key.vr, matcher))
    return [key for key in merged if key.tag not in used]


def parse_find(
    identifier: DicomJson,
    model: Model,
    *,
    partition: str = "default",
    relational: bool = False,
    fuzzy: bool = False,
    combined_datetime: bool = False,
) -> FindRequest:
    """Read a C-FIND identifier into a `FindRequest` (rules in the module docstring).

    Raises `QueryRetrieveError` with status A900 (and the Offending Element) for an
    identifier the model cannot answer.
    """
    level = level_of_identifier(identifier, model)
    keys: list[MatchKey] = []
    requested: list[RequestedKey] = []
    seen_unique: set[Level] = set()
    for tag, element in sorted(identifier.items()):
        if not is_key(tag):
            continue
        matcher, wanted = key_matcher(tag, element)
        requested.append(wanted)
        owner = model.level_of(tag, level)
        _check_key(tag, matcher, model, owner, level, relational)
        if owner is not level and tag == unique_key(owner) and not isinstance(matcher, Universal):
            seen_unique.add(owner)
        if not isinstance(matcher, Universal):
            keys.append(MatchKey(tag, wanted.vr, matcher))
    if not relational:
        for above in model.levels[: model.levels.index(level)]:
            if above not in seen_unique:
                tag = unique_key(above)
                raise fail(f"hierarchical query needs the {above.value} key ({tag})", tag)
    charset = tuple(
        str(v).strip() for v in identifier.get(SPECIFIC_CHARACTER_SET, {}).get("Value") or ()
    )
    if combined_datetime:
        keys = combine_date_time(keys)
    return FindRequest(
        model=model,
        level=level,
        query=Query(level=level, keys=tuple(keys), partition=partition, fuzzy=fuzzy),
        requested=tuple(requested),
        character_set=charset,
    )


def _select(element: Mapping[str, Any] | None, wanted: RequestedKey) -> dict[str, Any]:
    """The entity's element for a requested key, zero length when absent (C.4.1.1.3.2)."""
    if not element or "Value" not in element:
        return {"vr": str(element.get("vr") or wanted.vr) if element else wanted.vr}
    vr = str(element.get("vr") or wanted.vr)
    values = element["Value"]
    if vr == "SQ" and wanted.items is not None:
        items = [
            {key.tag: _select(item.get(key.tag), key) for key in wanted.items}
            for item in values
            if isinstance(item, dict)
        ]
        return {"vr": "SQ", "Value": items}
    if vr == "SQ":
        return {"vr": "SQ", "Value": [_clean_item(item) for item in values]}
    if vr == "DS":
        values = [_ds(v) for v in values]
    return {"vr": vr, "Value": list(values)}


def _clean_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole sequence item as stored, without BulkDataURIs (the index holds no bulk data)."""
    return {tag: _select(element, RequestedKey(tag, "UN")) for tag, element in item.items()}


def _ds(value: object) -> object:
    """DS values as strings of at most 16 characters (PS3.5 Table 6.2-1), so encoding a float
    that came through JSON never fails on its length."""
    if isinstance(value, float):
        return format_number_as_ds(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for part in value.values():
            yield from _strings(part)
    elif isinstance(value, list):
        for part in value:
            yield from _strings(part)


def _encodable(identifier: DicomJson, charset: tuple[str, ...]) -> bool:
    """Whether every string fits the character set (a single-byte or UTF-8 repertoire)."""
    texts = list(_strings(identifier))
    if all(text.isascii() for text in texts):
        return True
    if len(charset) != 1 or not charset[0]:
        return False  # ISO 2022 code extensions: answer in UTF-8 instead
    codec = python_encoding.get(charset[0])
    if codec is None:
        return False
    try:
        for text in texts:
            text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def echo_keys(
    entity: DicomJson, requested: Iterable[RequestedKey], character_set: tuple[str, ...]
) -> DicomJson:
    """The requested keys with the entity's values, zero length where it has none
    (PS3.4 C.4.1.1.3.2, K.6.1.1.3), and the Specific Character Set they need (see
    `response_identifier`). Shared by the Query/Retrieve and Worklist C-FIND responses."""
    out: DicomJson = {}
    for wanted in requested:
        if wanted.tag == RETRIEVE_AE_TITLE:
            continue
        if wanted.tag == INSTANCE_AVAILABILITY:
            out[wanted.tag] = {"vr": "CS", "Value": ["ONLINE"]}  # PS3.3 C.4.23.1.1: on line
            continue
        out[wanted.tag] = _select(entity.get(wanted.tag), wanted)
    if _encodable(out, character_set):
        if character_set:
            out[SPECIFIC_CHARACTER_SET] = {"vr": "CS", "Value": list(character_set)}
    else:
        out[SPECIFIC_CHARACTER_SET] = {"vr": "CS", "Value": [_UTF8]}
    return out


def response_identifier(row: DicomJson, request: FindRequest, *, retrieve_ae: str) -> DicomJson:
    """The identifier of one pending response (PS3.4 C.4.1.1.3.2) for a matched entity.

    Specific Character Set: the request's own when every value fits it (the SCU asked in it
    and can read it), else ISO_IR 192 (UTF-8, which holds every stored value); absent when
    the request had none and every value is ASCII (the default repertoire).
    """
    out = echo_keys(row, request.requested, request.character_set)
    out[QUERY_RETRIEVE_LEVEL] = {"vr": "CS", "Value": [request.level.value]}
    out[RETRIEVE_AE_TITLE] = {"vr": "AE", "Value": [retrieve_ae]}
    return dict(sorted(out.items()))
