"""QIDO-RS query parameters to the query AST (PS3.18 8.3.4, 10.6).

The front end hands over the (name, value) pairs of the URL, percent-decoded and in order;
this module decides what they mean:

- `{attribute}={value}` is a match (PS3.18 8.3.4.1). The attribute is a keyword, a tag of 8
  hex digits, or a dotted path through sequences ("00400275.00400009",
  "RequestAttributesSequence.ScheduledProcedureStepID"); keywords and tags may be mixed.
  Keys under the same sequence are merged into one `SequenceMatch`, because C-FIND puts them
  in one item and one item must match them all (PS3.4 C.2.2.2.6). The value becomes a
  matcher through `keyvalues.matcher_for`, the same decision C-FIND makes.
- A matching key given twice: UIDs are united into one list, since PS3.18 8.3.4.1 writes
  uid-list-match as a repetition (`1*("&" attribute "=" 1#value)`) and clients send both
  forms; a repeated empty value adds nothing; any other repetition is a 400, since AND and
  OR would both be guesses.
- includefield (8.3.4.3): repeatable, comma-separated, or "all". An unknown attribute is a
  400 (the parameter is supported, its value is invalid, PS3.18 8.3); a dotted path includes
  its whole top-level sequence. "all" with other includefields (which 8.3.4.3 forbids) is
  read as "all", with a warning.
- fuzzymatching (8.3.4.2): "true" or "false"; limit and offset (8.3.4.4): unsigned integers.
  Repeating one of these is a 400. A server maximum caps the limit, with a warning.
- emptyvaluematching (8.3.4.5) and multiplevaluematching (8.3.4.6): validated; "true" is not
  supported, so it adds a warning carrying the text 8.3.4.5/8.3.4.6 prescribe for the HTTP
  Warning header (the front end adds "299 <service>: ").
- Any other name that is not an attribute ("foo=bar", the "_=12345" cache buster) is ignored
  with a warning: "The origin server shall ignore any unsupported Query Parameters" (8.3).

Parameter names are matched case-insensitively for the reserved words (ABNF literals are
case-insensitive, RFC 5234 2.3), and exactly for keywords (PS3.6 Table 6-1 spelling).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from pydicom.datadict import dictionary_VR, tag_for_keyword

from hounsfield.domain.errors import InvalidQueryError
from hounsfield.domain.keyvalues import base_vr, matcher_for
from hounsfield.domain.model import Level
from hounsfield.domain.query import (
    IncludeAll,
    Matcher,
    MatchKey,
    Query,
    SequenceMatch,
    SingleValue,
    UidList,
    Universal,
)

__all__ = ["attribute_path", "attribute_tag", "matcher_for", "parse_qido"]

_NO_SCOPE: Mapping[str, str] = MappingProxyType({})
_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_UINT = re.compile(r"\d+")
_BOOLEANS = {"true": True, "false": False}
_UNSUPPORTED_WARNINGS = {
    "emptyvaluematching": (
        "The emptyvaluematching parameter is not supported. "
        "Empty Value Matching has not been performed."
    ),
    "multiplevaluematching": (
        "The multiplevaluematching parameter is not supported. "
        "Multiple Value Matching has not been performed."
    ),
}
_RESERVED = frozenset({"includefield", "fuzzymatching", "limit", "offset", *_UNSUPPORTED_WARNINGS})


class _UnknownAttributeError(Exception):
    """An attribute id that is neither a keyword nor a tag of the data dictionary."""


def _resolve(attribute_id: str) -> tuple[str, str]:
    """(tag, VR) of one keyword or 8-hex tag; `_UnknownAttributeError` if the dictionary lacks it.

    Private and unknown tags have no VR to match with, so they are unknown here too.
    """
    if _TAG.fullmatch(attribute_id):
        number = int(attribute_id, 16)
    else:
        found = tag_for_keyword(attribute_id)
        if found is None:
            raise _UnknownAttributeError(attribute_id)
        number = found
    try:
        vr = str(dictionary_VR(number))
    except KeyError:
        raise _UnknownAttributeError(attribute_id) from None
    return f"{number:08X}", base_vr(vr)


def attribute_tag(attribute_id: str) -> str:
    """The tag ("0020000D") of a keyword or tag ("StudyInstanceUID", "0020000d").

    Raises `InvalidQueryError` for anything else, dotted paths included (see `attribute_path`).
    """
    try:
        return _resolve(attribute_id)[0]
    except _UnknownAttributeError:
        raise InvalidQueryError(f"unknown attribute {attribute_id!r}") from None


def attribute_path(attribute_id: str) -> tuple[tuple[str, str], ...]:
    """(tag, VR) of each step of a dotted attribute path (PS3.18 8.3.4.1 `attribute`).

    Every step but the last must be a sequence (SQ). Raises `InvalidQueryError` naming the
    attribute when a step is unknown or is not a sequence.
    """
    steps: list[tuple[str, str]] = []
    for part in attribute_id.split("."):
        try:
            tag, vr = _resolve(part)
        except _UnknownAttributeError:
            raise InvalidQueryError(f"unknown attribute {part!r} in {attribute_id!r}") from None
        if steps and steps[-1][1] != "SQ":
            raise InvalidQueryError(f"{attribute_id!r}: {steps[-1][0]} is not a sequence")
        steps.append((tag, vr))
    return tuple(steps)


@dataclass
class _Node:
    """One attribute of the key tree being built: leaf matchers and/or item keys of a sequence."""

    vr: str
    name: str
    leaves: list[Matcher] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)


def _insert(
    tree: dict[str, _Node], path: tuple[tuple[str, str], ...], name: str, m: Matcher
) -> None:
    level = tree
    for depth, (tag, vr) in enumerate(path):
        node = level.setdefault(tag, _Node(vr=vr, name=name))
        if depth == len(path) - 1:
            node.leaves.append(m)
        level = node.children


def _combine(node: _Node) -> Matcher:
    """One matcher from the values given for one attribute (see the module docstring)."""
    given = [m for m in node.leaves if not isinstance(m, Universal)]
    if len(given) <= 1:
        return given[0] if given else Universal()
    if node.vr == "UI":
        uids: dict[str, None] = {}
        for m in given:
            if isinstance(m, SingleValue):
                uids[m.value] = None
            elif isinstance(m, UidList):
                uids.update(dict.fromkeys(m.uids))
        found = tuple(uids)
        return SingleValue(found[0]) if len(found) == 1 else UidList(found)
    raise InvalidQueryError(f"matching key {node.name!r} is given more than once")


def _keys(tree: dict[str, _Node]) -> tuple[MatchKey, ...]:
    """The key tree as AST keys; item keys win over an empty value for the same sequence."""
    keys = []
    for tag, node in tree.items():
        if node.children:
            keys.append(MatchKey(tag, "SQ", SequenceMatch(_keys(node.children))))
        else:
            keys.append(MatchKey(tag, node.vr, _combine(node)))
    return tuple(keys)


def _uint(name: str, value: str) -> int:
    if not _UINT.fullmatch(value.strip()):
        raise InvalidQueryError(f"invalid {name} {value!r}: expected an unsigned integer")
    return int(value)


def _boolean(name: str, value: str) -> bool:
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise InvalidQueryError(f"invalid {name} {value!r}: expected true or false") from None


def _include(values: list[str], warnings: list[str]) -> tuple[str, ...] | IncludeAll:
    """The includefield parameters as tags or "all" (PS3.18 8.3.4.3)."""
    items = [item.strip() for value in values for item in value.split(",")]
    if values and not any(items):
        raise InvalidQueryError("invalid includefield: expected attributes or 'all'")
    tags: dict[str, None] = {}
    every = False
    for item in filter(None, items):
        if item.lower() == "all":
            every = True
        elif _TAG.fullmatch(item):
            tags[item.upper()] = None  # a tag we may store even if the dictionary lacks it
        else:
            tags[attribute_path(item)[0][0]] = None
    if every:
        if tags:
            warnings.append("includefield=all given with other includefield values; using all")
        return "all"
    return tuple(tags)


def parse_qido(
    params: Sequence[tuple[str, str]],
    level: Level,
    *,
    scope: Mapping[str, str] = _NO_SCOPE,
    partition: str = "default",
    max_limit: int | None = None,
) -> Query:
    """Read QIDO-RS query parameters into a `Query` (see the module docstring for the rules).

    `scope` holds the UIDs of the URL path ({"0020000D": study_uid} for
    /studies/{study}/series); each becomes a single value key placed before the others, so a
    parameter on the same attribute narrows the result further instead of widening it.
    Raises `InvalidQueryError`, which the front end maps to 400, naming the parameter.
    """
    warnings: list[str] = []
    scope_keys = []
    for attribute, uid in scope.items():
        tag = attribute_tag(attribute)
        matcher = matcher_for("UI", uid, attribute=attribute)
        if not isinstance(matcher, SingleValue):
            raise InvalidQueryError(f"invalid UID {uid!r} in the path for {attribute}")
        scope_keys.append(MatchKey(tag, "UI", matcher))

    tree: dict[str, _Node] = {}
    seen: dict[str, str] = {}
    includes: list[str] = []
    fuzzy = False
    limit: int | None = None
    offset = 0
    for name, value in params:
        word = name.strip().lower()
        if word in _RESERVED:
            if word == "includefield":
                includes.append(value)
                continue
            if word in seen:
                raise InvalidQueryError(f"query parameter {name!r} is given more than once")
            seen[word] = value
            if word == "fuzzymatching":
                fuzzy = _boolean(name, value)
            elif word == "limit":
                limit = _uint(name, value)
            elif word == "offset":
                offset = _uint(name, value)
            elif _boolean(name, value):
                warnings.append(_UNSUPPORTED_WARNINGS[word])
            continue
        first = name.split(".", 1)[0]
        try:
            _resolve(first)
        except _UnknownAttributeError:
            warnings.append(f"ignored unsupported query parameter {name!r}")
            continue
        path = attribute_path(name)
        _insert(tree, path, name, matcher_for(path[-1][1], value, attribute=name))

    if max_limit is not None and (limit is None or limit > max_limit):
        if limit is not None:
            warnings.append(f"limit {limit} exceeds the maximum of {max_limit}; using {max_limit}")
        limit = max_limit
    return Query(
        level=level,
        keys=(*scope_keys, *_keys(tree)),
        include=_include(includes, warnings),
        fuzzy=fuzzy,
        limit=limit,
        offset=offset,
        partition=partition,
        warnings=tuple(warnings),
    )
