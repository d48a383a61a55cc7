"""QIDO-RS query parameters (PS3.18 8.3.4) to the query AST, and the shared value rules."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hounsfield.domain.errors import InvalidQueryError
from hounsfield.domain.keyvalues import matcher_for
from hounsfield.domain.matching import matches
from hounsfield.domain.model import Level
from hounsfield.domain.qido import attribute_path, attribute_tag, parse_qido
from hounsfield.domain.query import (
    Matcher,
    MatchKey,
    Query,
    Range,
    SequenceMatch,
    SingleValue,
    UidList,
    Universal,
    Wildcard,
)

PROPERTY = settings(max_examples=200, deadline=None)
STUDY_UID = "0020000D"


def parse(*params: tuple[str, str], **kwargs: object) -> Query:
    return parse_qido(list(params), Level.STUDY, **kwargs)  # type: ignore[arg-type]


def only_key(*params: tuple[str, str]) -> MatchKey:
    keys = parse(*params).keys
    assert len(keys) == 1, keys
    return keys[0]


# Attribute ids (PS3.18 8.3.4.1) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tag", "vr"),
    [
        ("PatientName", "00100010", "PN"),
        ("00100010", "00100010", "PN"),
        ("0020000d", STUDY_UID, "UI"),
        ("StudyDate", "00080020", "DA"),
        ("SmallestImagePixelValue", "00280106", "US"),  # "US or SS": the first
    ],
)
def test_attribute_as_keyword_or_tag(name: str, tag: str, vr: str) -> None:
    key = only_key((name, ""))
    assert (key.tag, key.vr, key.matcher) == (tag, vr, Universal())


@pytest.mark.parametrize(
    "name",
    [
        "00400275.00400009",
        "RequestAttributesSequence.ScheduledProcedureStepID",
        "00400275.ScheduledProcedureStepID",
    ],
)
def test_sequence_path(name: str) -> None:
    """8.3.4.1 attribute = attribute-id *("." attribute-id): a key inside a sequence item."""
    key = only_key((name, "SPS1"))
    inner = MatchKey("00400009", "SH", SingleValue("SPS1"))
    assert key == MatchKey("00400275", "SQ", SequenceMatch((inner,)))


def test_keys_of_one_sequence_share_one_item() -> None:
    """PS3.4 C.2.2.2.6: the item keys of one sequence are matched against the same item."""
    key = only_key(
        ("00400275.00400009", "SPS1"),
        ("RequestAttributesSequence.RequestedProcedureID", "RP*"),
        ("RequestAttributesSequence", ""),
    )
    assert key.matcher == SequenceMatch(
        (
            MatchKey("00400009", "SH", SingleValue("SPS1")),
            MatchKey("00401001", "SH", Wildcard("RP*")),
        )
    )


def test_nested_sequences() -> None:
    key = only_key(("RequestAttributesSequence.ScheduledProtocolCodeSequence.CodeValue", "T-1"))
    code = MatchKey("00080100", "SH", SingleValue("T-1"))
    protocol = MatchKey("00400008", "SQ", SequenceMatch((code,)))
    assert key == MatchKey("00400275", "SQ", SequenceMatch((protocol,)))


def test_empty_sequence_key_is_universal() -> None:
    """C.2.2.2.6: a sequence key without item keys matches every entity."""
    assert only_key(("RequestAttributesSequence", "")) == MatchKey("00400275", "SQ", Universal())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("PatientName.PatientID", "00100010 is not a sequence"),
        ("RequestAttributesSequence.NoSuchKeyword", "unknown attribute 'NoSuchKeyword'"),
        ("RequestAttributesSequence", "sequence is matched through its item keys"),
    ],
)
def test_bad_paths_are_400(name: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        parse((name, "x"))


@pytest.mark.parametrize(
    "name", ["foo", "_", "patientname", "00091001", "foo.bar", "Foo.PatientID"]
)
def test_unknown_parameters_are_ignored_with_a_warning(name: str) -> None:
    """PS3.18 8.3: "The origin server shall ignore any unsupported Query Parameters"."""
    query = parse((name, "12345"), ("PatientID", "A"))
    assert [k.tag for k in query.keys] == ["00100020"]
    assert query.warnings == (f"ignored unsupported query parameter {name!r}",)


def test_attribute_tag_and_path() -> None:
    assert attribute_tag("StudyInstanceUID") == STUDY_UID
    assert attribute_tag("0020000d") == STUDY_UID
    assert attribute_path("RequestAttributesSequence.00400009") == (
        ("00400275", "SQ"),
        ("00400009", "SH"),
    )
    for bad in ("Nope", "00400275.00400009", "1234"):
        with pytest.raises(InvalidQueryError, match="unknown attribute"):
            attribute_tag(bad)


# Values to matchers (PS3.4 C.2.2.2) --------------------------------------------------------

MATCHERS: list[tuple[str, str, str, Matcher]] = [
    ("C.2.2.2.3 empty is universal", "PatientName", "", Universal()),
    ("C.2.2.2.3 spaces are padding", "PatientID", "   ", Universal()),
    ("C.2.2.2.4 Note 1 '*' is universal", "PatientName", "*", Universal()),
    ("C.2.2.2.4 Note 1 '*' on DA", "StudyDate", "*", Universal()),
    ("C.2.2.2.4 Note 1 '*' on UI", "StudyInstanceUID", "**", Universal()),
    ("C.2.2.2.1 single", "PatientID", "ABC", SingleValue("ABC")),
    ("C.2.2.2.1 padding stripped", "PatientID", " ABC ", SingleValue("ABC")),
    ("C.2.2.2.1 LT keeps leading spaces", "StudyComments", "  a\\b ", SingleValue("  a\\b")),
    ("C.2.2.2.1 PN", "PatientName", "Doe^John", SingleValue("Doe^John")),
    ("C.2.2.2.1 PN groups", "PatientName", "Yamada=山田", SingleValue("Yamada=山田")),
    ("C.2.2.2.1 comma is a character", "StudyDescription", "CT, head", SingleValue("CT, head")),
    ("C.2.2.2.1 IS", "SeriesNumber", "-5", SingleValue("-5")),
    ("C.2.2.2.1 DS", "SliceThickness", "1.5e0", SingleValue("1.5e0")),
    ("C.2.2.2.1 US", "Rows", "512", SingleValue("512")),
    ("C.2.2.2.1 AS", "PatientAge", "030Y", SingleValue("030Y")),
    ("C.2.2.2.1 DA", "StudyDate", "20240229", SingleValue("20240229")),
    ("C.2.2.2.1 TM", "StudyTime", "103000.123456", SingleValue("103000.123456")),
    ("C.2.2.2.1 TM hour", "StudyTime", "10", SingleValue("10")),
    ("C.2.2.2.1 DT", "AcquisitionDateTime", "2024", SingleValue("2024")),
    (
        "C.2.2.2.1 DT with negative offset",
        "AcquisitionDateTime",
        "20240101120000-0500",
        SingleValue("20240101120000-0500"),
    ),
    ("C.2.2.2.1 UI", "StudyInstanceUID", "1.2.840.1", SingleValue("1.2.840.1")),
    ("C.2.2.2.1 UI leading zero", "StudyInstanceUID", "1.02", SingleValue("1.02")),
    ("C.2.2.2.2 commas", "StudyInstanceUID", "1.2,1.3", UidList(("1.2", "1.3"))),
    ("C.2.2.2.2 backslashes", "StudyInstanceUID", "1.2\\1.3", UidList(("1.2", "1.3"))),
    ("C.2.2.2.2 duplicates", "StudyInstanceUID", "1.2,1.2", SingleValue("1.2")),
    ("C.2.2.2.4 PN", "PatientName", "Doe*", Wildcard("Doe*")),
    ("C.2.2.2.4 LO ?", "PatientID", "A?C", Wildcard("A?C")),
    ("C.2.2.2.4 CS", "ModalitiesInStudy", "M*", Wildcard("M*")),
    ("C.2.2.2.4 regex characters", "StudyDescription", "a.b(c*", Wildcard("a.b(c*")),
    ("C.2.2.2.5 DA range", "StudyDate", "20240101-20240131", Range("20240101", "20240131")),
    ("C.2.2.2.5 DA -date", "StudyDate", "-20240131", Range(None, "20240131")),
    ("C.2.2.2.5 DA date-", "StudyDate", "20240101-", Range("20240101", None)),
    ("C.2.2.2.5 DA same day", "StudyDate", "20240101-20240101", Range("20240101", "20240101")),
    ("C.2.2.2.5 TM range", "StudyTime", "10-1230", Range("10", "1230")),
    ("C.2.2.2.5 TM same hour", "StudyTime", "1000-10", Range("1000", "10")),
    ("C.2.2.2.5 DT years", "AcquisitionDateTime", "2023-2024", Range("2023", "2024")),
    (
        "C.2.2.2.5 DT with offsets",
        "AcquisitionDateTime",
        "20240101000000-0500-20240102",
        Range("20240101000000-0500", "20240102"),
    ),
]


@pytest.mark.parametrize(
    ("clause", "name", "value", "expected"), MATCHERS, ids=[case[0] for case in MATCHERS]
)
def test_value_to_matcher(clause: str, name: str, value: str, expected: Matcher) -> None:
    assert only_key((name, value)).matcher == expected, clause


INVALID: list[tuple[str, str, str, str]] = [
    ("PS3.5 DA", "StudyDate", "2024-01-01", "expected YYYYMMDD"),
    ("PS3.5 DA no such day", "StudyDate", "20230229", "expected YYYYMMDD"),
    ("PS3.5 DA year only", "StudyDate", "2024", "expected YYYYMMDD"),
    ("C.2.2.2.5 DA order", "StudyDate", "20240102-20240101", "lower bound is after"),
    ("C.2.2.2.5 bare dash", "StudyDate", "-", "at least one bound"),
    ("C.2.2.2.4 no wildcard on DA", "StudyDate", "2024*", "wild cards are not allowed for DA"),
    ("PS3.5 TM hour 24", "StudyTime", "24", "HH[MM[SS"),
    ("PS3.5 TM fraction without seconds", "StudyTime", "10.5", "HH[MM[SS"),
    ("PS3.5 TM 7 fraction digits", "StudyTime", "103000.1234567", "HH[MM[SS"),
    ("C.2.2.2.5.2 no midnight crossing", "StudyTime", "2300-0100", "lower bound is after"),
    ("PS3.5 DT offset", "AcquisitionDateTime", "2024+1500", "YYYY[MM"),
    ("PS3.5 DT month", "AcquisitionDateTime", "202413", "YYYY[MM"),
    ("PS3.5 UI letters", "StudyInstanceUID", "1.2.abc", "digits and dots"),
    ("PS3.5 UI empty component", "StudyInstanceUID", "1..2", "digits and dots"),
    ("PS3.5 UI too long", "StudyInstanceUID", "1." + "2" * 63, "at most 64"),
    ("PS3.5 UI list item", "StudyInstanceUID", "1.2,,1.3", "digits and dots"),
    ("C.2.2.2.4 no wildcard on UI", "StudyInstanceUID", "1.2.*", "digits and dots"),
    ("PS3.5 IS", "SeriesNumber", "five", "integer"),
    ("PS3.5 IS range", "SeriesNumber", "2147483648", "integer"),
    ("C.2.2.2.4 no wildcard on IS", "SeriesNumber", "1*", "wild cards are not allowed for IS"),
    ("PS3.5 US negative", "Rows", "-1", "from 0 to 65535"),
    ("PS3.5 US too big", "Rows", "70000", "from 0 to 65535"),
    ("PS3.5 DS", "SliceThickness", "1,5", "decimal"),
    ("PS3.5 FD nan", "PatientWeight", "nan", "decimal"),
    ("PS3.5 FL nan", "RecommendedDisplayFrameRateInFloat", "nan", "finite"),
    ("PS3.5 CS lower case", "ModalitiesInStudy", "ct", "upper-case letters"),
    ("PS3.5 AS", "PatientAge", "30Y", "three digits"),
    ("PS3.5 PN groups", "PatientName", "a=b=c=d", "at most 3"),
    ("PS3.5 PN components", "PatientName", "a^b^c^d^e^f", "at most 3"),
    ("PS3.5 control characters", "PatientID", "A\x01", "control characters"),
    ("C.2.2.2.8 multiple values", "ModalitiesInStudy", "CT\\MR", "only supported for UID"),
    ("PS3.4 binary VR", "PixelData", "abc", "not supported"),
]


@pytest.mark.parametrize(
    ("clause", "name", "value", "message"), INVALID, ids=[case[0] for case in INVALID]
)
def test_invalid_values_are_400_naming_the_parameter(
    clause: str, name: str, value: str, message: str
) -> None:
    """PS3.18 8.3: a supported parameter with an invalid value gets 400."""
    with pytest.raises(InvalidQueryError, match=re.escape(message)) as raised:
        parse((name, value))
    assert name in str(raised.value), clause


def test_binary_vr_universal_is_allowed() -> None:
    assert only_key(("PixelData", "")).matcher == Universal()


def test_matcher_for_reads_cfind_values() -> None:
    """C-FIND carries UID lists with backslashes (C.2.2.2.2) through the same function."""
    assert matcher_for("UI", "1.2\\1.3\x00", attribute="(0020,000D)") == UidList(("1.2", "1.3"))
    assert matcher_for("US or SS", "5", attribute="x") == SingleValue("5")
    with pytest.raises(InvalidQueryError, match=r"\(0008,0020\)"):
        matcher_for("DA", "yesterday", attribute="(0008,0020)")


# Repeated keys ------------------------------------------------------------------------------


def test_repeated_uid_keys_are_one_list() -> None:
    """8.3.4.1 uid-list-match: UIDs given in repeated parameters form one list."""
    key = only_key((STUDY_UID, "1.2,1.3"), ("StudyInstanceUID", "1.4"), ("0020000d", "1.2"))
    assert key == MatchKey(STUDY_UID, "UI", UidList(("1.2", "1.3", "1.4")))


def test_repeated_empty_value_adds_nothing() -> None:
    assert only_key(("PatientName", ""), ("PatientName", "Doe")).matcher == SingleValue("Doe")
    assert only_key(("PatientName", ""), ("PatientName", "")).matcher == Universal()


def test_repeated_other_keys_are_400() -> None:
    with pytest.raises(InvalidQueryError, match="'StudyDate' is given more than once"):
        parse(("StudyDate", "20240101"), ("StudyDate", "20240102"))


# Control parameters ---------------------------------------------------------------------------


def test_defaults() -> None:
    query = parse()
    assert query == Query(level=Level.STUDY)


def test_level_partition_and_paging() -> None:
    query = parse_qido(
        [("limit", "10"), ("offset", "20"), ("fuzzymatching", "TRUE")],
        Level.SERIES,
        partition="tenant-a",
    )
    assert (query.level, query.partition) == (Level.SERIES, "tenant-a")
    assert (query.limit, query.offset, query.fuzzy) == (10, 20, True)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("limit", "-1", "invalid limit '-1': expected an unsigned integer"),
        ("limit", "ten", "invalid limit 'ten'"),
        ("limit", "1.5", "invalid limit '1.5'"),
        ("limit", "", "invalid limit ''"),
        ("offset", "-5", "invalid offset '-5'"),
        ("fuzzymatching", "yes", "invalid fuzzymatching 'yes': expected true or false"),
        ("emptyvaluematching", "1", "invalid emptyvaluematching '1'"),
        ("multiplevaluematching", "", "invalid multiplevaluematching ''"),
        ("includefield", "NoSuchKeyword", "unknown attribute 'NoSuchKeyword'"),
        ("includefield", "", "invalid includefield"),
        ("includefield", "PatientName.PatientID", "not a sequence"),
    ],
)
def test_invalid_control_parameters(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        parse((name, value))


@pytest.mark.parametrize("name", ["limit", "offset", "fuzzymatching", "emptyvaluematching"])
def test_repeated_control_parameters_are_400(name: str) -> None:
    value = "1" if name in ("limit", "offset") else "false"
    with pytest.raises(InvalidQueryError, match="given more than once"):
        parse((name, value), (name, value))


def test_max_limit_caps_with_warning() -> None:
    assert parse(("limit", "50"), max_limit=100).limit == 50
    assert parse(max_limit=100).limit == 100
    capped = parse(("limit", "500"), max_limit=100)
    assert capped.limit == 100
    assert capped.warnings == ("limit 500 exceeds the maximum of 100; using 100",)
    assert parse(("limit", "0")).limit == 0


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("emptyvaluematching", "Empty Value Matching has not been performed."),
        ("multiplevaluematching", "Multiple Value Matching has not been performed."),
    ],
)
def test_unsupported_extended_matching_warns(name: str, text: str) -> None:
    """PS3.18 8.3.4.5 and 8.3.4.6 prescribe the Warning text when the server lacks them."""
    assert parse((name, "false")).warnings == ()
    (warning,) = parse((name, "true")).warnings
    assert warning == f"The {name} parameter is not supported. {text}"


def test_includefield() -> None:
    """8.3.4.3: repeated, comma-separated, keywords or tags; a path includes its sequence."""
    query = parse(
        ("includefield", "PatientAge, 00081030"),
        ("includeField", "RequestAttributesSequence.ScheduledProcedureStepID,,PatientAge"),
        ("includefield", "00091001"),
    )
    assert query.include == ("00101010", "00081030", "00400275", "00091001")


def test_includefield_all() -> None:
    assert parse(("includefield", "all")).include == "all"
    query = parse(("includefield", "PatientAge"), ("includefield", "ALL"))
    assert query.include == "all"
    assert query.warnings == ("includefield=all given with other includefield values; using all",)


# Scope from the URL path ---------------------------------------------------------------------


def test_scope_keys_come_first_and_narrow() -> None:
    """/studies/{study}/series?StudyInstanceUID=...: both keys apply (AND), none widens."""
    query = parse_qido(
        [("Modality", "CT"), ("StudyInstanceUID", "1.3")],
        Level.SERIES,
        scope={"StudyInstanceUID": "1.2"},
    )
    assert query.keys == (
        MatchKey(STUDY_UID, "UI", SingleValue("1.2")),
        MatchKey("00080060", "CS", SingleValue("CT")),
        MatchKey(STUDY_UID, "UI", SingleValue("1.3")),
    )


@pytest.mark.parametrize("uid", ["1.2,1.3", "abc", ""])
def test_scope_uid_must_be_one_valid_uid(uid: str) -> None:
    with pytest.raises(InvalidQueryError, match="UID"):
        parse_qido([], Level.SERIES, scope={STUDY_UID: uid})


def test_parsed_query_runs_on_the_reference_matcher() -> None:
    query = parse(
        ("PatientName", "doe*"),
        ("StudyDate", "20240101-"),
        ("00400275.00400009", "SPS1"),
        ("_", "1700000000"),
    )
    step = {"00400009": {"vr": "SH", "Value": ["SPS1"]}}
    study: dict[str, dict[str, Any]] = {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
        "00080020": {"vr": "DA", "Value": ["20240301"]},
        "00400275": {"vr": "SQ", "Value": [step]},
    }
    assert matches(query.keys, study)
    study["00080020"] = {"vr": "DA", "Value": ["20231231"]}
    assert not matches(query.keys, study)


# Properties ------------------------------------------------------------------------------------


def da(day: dt.date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


@PROPERTY
@given(lower=st.dates(), upper=st.dates())
def test_date_range_parses_iff_ordered(lower: dt.date, upper: dt.date) -> None:
    """C.2.2.2.5.1: "<date1> - <date2>" requires date1 <= date2."""
    value = f"{da(lower)}-{da(upper)}"
    if lower <= upper:
        assert only_key(("StudyDate", value)).matcher == Range(da(lower), da(upper))
    else:
        with pytest.raises(InvalidQueryError, match="lower bound is after"):
            parse(("StudyDate", value))


@PROPERTY
@given(
    value=st.text(
        alphabet=st.characters(codec="ascii", categories=["L", "N", "P", "S"]),
        min_size=1,
    ).filter(lambda v: not set("*?\\").intersection(v))
)
def test_plain_long_strings_are_single_values_that_match_themselves(value: str) -> None:
    """C.2.2.2.1: an LO value without wild cards is single value matching, and matches itself."""
    key = only_key(("StudyDescription", value))
    assert key.matcher == SingleValue(value)
    assert matches([key], {"00081030": {"vr": "LO", "Value": [value]}})
