"""The query AST shared by QIDO-RS and C-FIND.

Both front ends translate their request into a `Query`; the index adapters compile it, and the
reference matcher in `domain.matching` defines what it means (PS3.4 C.2.2.2). Values are kept as
they arrive (already percent-decoded and character-set decoded); matchers never see raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hounsfield.domain.model import Level


@dataclass(frozen=True, slots=True)
class Universal:
    """Universal matching (PS3.4 C.2.2.2.3): empty key value; matches everything, returns it."""


@dataclass(frozen=True, slots=True)
class SingleValue:
    """Single value matching (PS3.4 C.2.2.2.1). Case-sensitive except for PN."""

    value: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    """Wild card matching (PS3.4 C.2.2.2.4): '*' any run of characters, '?' one character."""

    pattern: str


@dataclass(frozen=True, slots=True)
class UidList:
    """List of UID matching (PS3.4 C.2.2.2.2): matches any one of the UIDs."""

    uids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """Range matching (PS3.4 C.2.2.2.5) for DA, TM and DT; an open end is None.

    Bounds keep their DICOM string form; the matcher compares them after normalising to a
    common precision, so "20240101-" and "-1200" mean what the standard says.
    """

    lower: str | None
    upper: str | None


@dataclass(frozen=True, slots=True)
class SequenceMatch:
    """Sequence matching (PS3.4 C.2.2.2.6): an item of the sequence must match every key."""

    keys: tuple[MatchKey, ...]


@dataclass(frozen=True, slots=True)
class DateTimeRange:
    """Combined date-time matching (PS3.4 C.2.2.2.5.1), only when negotiated (C.5.1.1.2):
    a DA key and its TM partner (Study Date and Study Time, ...) are one DT range, so
    "20060705-20060707" with "1000-1800" means from 10:00 on the 5th to 18:00 on the 7th,
    not 10:00-18:00 on each day. It sits on the DA key; `time_tag` names the TM attribute.

    `lower`/`upper` are the DT bounds (None when open); `date` is the DA key's own range,
    which contains the combined one, so an index may pre-filter on it.
    """

    time_tag: str
    date: Range
    lower: str | None
    upper: str | None


Matcher = Universal | SingleValue | Wildcard | UidList | Range | SequenceMatch | DateTimeRange


@dataclass(frozen=True, slots=True)
class MatchKey:
    """One key of a query: the attribute (tag as 8 hex digits, upper case), its VR, its matcher."""

    tag: str
    vr: str
    matcher: Matcher


IncludeAll = Literal["all"]


@dataclass(frozen=True, slots=True)
class Query:
    """A query at one level, in one partition.

    `keys` constrain the level itself and its parents (for example, a series query scoped to a
    study carries a StudyInstanceUID key). `include` lists extra tags to return beyond the
    level's defaults, or "all". `fuzzy` turns on fuzzy matching of person names (PS3.18 8.3.4.1).
    """

    level: Level
    keys: tuple[MatchKey, ...] = ()
    include: tuple[str, ...] | IncludeAll = ()
    fuzzy: bool = False
    limit: int | None = None
    offset: int = 0
    partition: str = "default"
    warnings: tuple[str, ...] = field(default=())
