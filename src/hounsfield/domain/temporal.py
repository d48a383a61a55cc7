"""DA, TM and DT values as comparable spans of time, for range and single value matching.

A DICOM date, time or datetime may be given with reduced precision: "10" is a TM meaning the
hour 10, "2024" is a DT meaning the year 2024 (PS3.5 6.2, Table 6.2-1: trailing null components
of a DT or TM indicate that the value is not precise to those components). Range Matching
(PS3.4 C.2.2.2.5) compares such values, so each one is turned into a `Span`: the first and the
last microsecond it can denote, counted on one integer axis:

- DA: days since 0001-01-01 (`date.toordinal()`); a date has no reduced form, floor == ceil.
- TM: microseconds since midnight; "10" spans 10:00:00.000000 to 10:59:59.999999.
- DT: microseconds since 0001-01-01T00:00 local time, plus the UTC offset in minutes when the
  value carries one ("&ZZXX", PS3.5 Table 6.2-1).

The rules built on these spans (how a query bound and a stored value compare) live in
`domain.matching`; this module only parses. Every parser returns None for a string that is not
a valid value, and never raises, because stored values may be anything a modality wrote.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND
_US_PER_HOUR = 60 * _US_PER_MINUTE
US_PER_DAY = 24 * _US_PER_HOUR

_DA = re.compile(r"(\d{4})(\d{2})(\d{2})")
# ACR-NEMA "YYYY.MM.DD" dates still appear in old stored objects (PS3.5 6.2, DA note).
_DA_LEGACY = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})")
_TM = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?")
# ACR-NEMA "HH:MM:SS.frac" times (PS3.5 6.2, TM note).
_TM_LEGACY = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?")
_DT = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"([+-]\d{4})?"
)


@dataclass(frozen=True, slots=True)
class Span:
    """The first (`floor`) and last (`ceil`) instant a value denotes, on its VR's integer axis.

    `offset` is the UTC offset in minutes of a DT that carries one ("+0100" -> 60), else None.
    """

    floor: int
    ceil: int
    offset: int | None = None


def _fraction(digits: str | None) -> tuple[int, int]:
    """Microseconds of a ".F{1,6}" fraction, and how many microseconds its last digit covers."""
    if not digits:
        return 0, _US_PER_SECOND
    scale = 10 ** (6 - len(digits))
    return int(digits) * scale, scale


def _time_span(
    hour: str, minute: str | None, second: str | None, frac: str | None
) -> tuple[int, int] | None:
    """Floor and ceil (microseconds since midnight) of HH[MM[SS[.F]]], or None if out of range.

    Seconds may be 60 (a leap second, PS3.5 Table 6.2-1); hours stop at 23.
    """
    h = int(hour)
    m = int(minute) if minute is not None else 0
    s = int(second) if second is not None else 0
    if h > 23 or m > 59 or s > 60:
        return None
    base = h * _US_PER_HOUR + m * _US_PER_MINUTE + s * _US_PER_SECOND
    if minute is None:
        return base, base + _US_PER_HOUR - 1
    if second is None:
        return base, base + _US_PER_MINUTE - 1
    micros, width = _fraction(frac)
    return base + micros, base + micros + width - 1


def parse_da(value: str, *, lenient: bool = False) -> Span | None:
    """Span of a DA "YYYYMMDD" (PS3.5 Table 6.2-1), in days since 0001-01-01.

    `lenient` also accepts the ACR-NEMA "YYYY.MM.DD" form, for stored values only: a query
    must use the DICOM form. Year 0000 cannot be represented and is rejected.
    """
    text = value.strip()
    found = _DA.fullmatch(text) or (_DA_LEGACY.fullmatch(text) if lenient else None)
    if found is None:
        return None
    try:
        day = date(int(found[1]), int(found[2]), int(found[3])).toordinal()
    except ValueError:
        return None
    return Span(day, day)


def parse_tm(value: str, *, lenient: bool = False) -> Span | None:
    """Span of a TM "HH[MM[SS[.FFFFFF]]]" (PS3.5 Table 6.2-1), in microseconds since midnight.

    `lenient` also accepts the ACR-NEMA "HH:MM:SS.frac" form, for stored values only.
    """
    text = value.strip()
    found = _TM.fullmatch(text) or (_TM_LEGACY.fullmatch(text) if lenient else None)
    if found is None:
        return None
    span = _time_span(found[1], found[2], found[3], found[4])
    return None if span is None else Span(*span)


def parse_dt(value: str) -> Span | None:
    """Span of a DT "YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]" (PS3.5 Table 6.2-1).

    The axis is microseconds since 0001-01-01T00:00 in the value's own local time; the offset,
    when present, is kept apart so the matcher can decide whether to apply it. Offsets run
    from -1200 to +1400 with minutes below 60.
    """
    found = _DT.fullmatch(value.strip())
    if found is None:
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, frac_s, zone = found.groups()
    offset: int | None = None
    if zone is not None:
        hours, minutes = int(zone[1:3]), int(zone[3:5])
        offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
        if minutes > 59 or offset < -12 * 60 or offset > 14 * 60:
            return None
    year = int(year_s)
    month = int(month_s) if month_s else None
    day = int(day_s) if day_s else None
    if year < 1 or (month is not None and not 1 <= month <= 12):
        return None
    first_month = month or 1
    last_month = month or 12
    last_day = day or calendar.monthrange(year, last_month)[1]
    try:
        floor_day = date(year, first_month, day or 1).toordinal()
        ceil_day = date(year, last_month, last_day).toordinal()
    except ValueError:
        return None
    if hour_s is None:
        time_floor, time_ceil = 0, US_PER_DAY - 1
    else:
        span = _time_span(hour_s, minute_s, second_s, frac_s)
        if span is None:
            return None
        time_floor, time_ceil = span
    return Span(floor_day * US_PER_DAY + time_floor, ceil_day * US_PER_DAY + time_ceil, offset)


def parse_temporal(vr: str, value: str, *, lenient: bool = False) -> Span | None:
    """Dispatch on the VR: DA, TM or DT; anything else is not temporal (None)."""
    if vr == "DA":
        return parse_da(value, lenient=lenient)
    if vr == "TM":
        return parse_tm(value, lenient=lenient)
    if vr == "DT":
        return parse_dt(value)
    return None


def utc(instant: int, offset: int | None) -> int:
    """An instant of a DT axis moved to UTC, given its offset in minutes (None: unchanged)."""
    return instant if offset is None else instant - offset * _US_PER_MINUTE
