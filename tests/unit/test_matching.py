"""The reference matcher against the clauses of PS3.4 C.2.2.2, case by case and by property."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR, tag_for_keyword

from hounsfield.domain.errors import InvalidQueryError
from hounsfield.domain.matching import match_key, matches
from hounsfield.domain.query import (
    Matcher,
    MatchKey,
    Range,
    SequenceMatch,
    SingleValue,
    UidList,
    Universal,
    Wildcard,
)

PROPERTY = settings(max_examples=200, deadline=None)


def key(keyword: str, matcher: Matcher) -> MatchKey:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return MatchKey(f"{tag:08X}", str(dictionary_VR(tag)).split(" or ")[0], matcher)


def entity(**attributes: Any) -> dict[str, dict[str, Any]]:
    """{keyword: value or list of values or a ready element dict} as DICOM JSON."""
    out: dict[str, dict[str, Any]] = {}
    for keyword, value in attributes.items():
        k = key(keyword, Universal())
        if isinstance(value, dict) and "vr" in value:
            out[k.tag] = value
            continue
        values = value if isinstance(value, list) else [value]
        if k.vr == "PN":
            values = [v if isinstance(v, dict) or v is None else {"Alphabetic": v} for v in values]
        out[k.tag] = {"vr": k.vr, "Value": values}
    return out


def pn(alphabetic: str, ideographic: str = "", phonetic: str = "") -> dict[str, str]:
    groups = {"Alphabetic": alphabetic, "Ideographic": ideographic, "Phonetic": phonetic}
    return {name: value for name, value in groups.items() if value}


# (clause, keyword, matcher, stored value or None for absent, expected)
CASES: list[tuple[str, str, Matcher, Any, bool]] = [
    # Universal Matching
    ("C.2.2.2.3", "PatientID", Universal(), "X1", True),
    ("C.2.2.2.3 absent", "PatientID", Universal(), None, True),
    ("C.2.2.2.3 empty", "PatientID", Universal(), {"vr": "LO"}, True),
    ("C.2.2.2.4 Note 1 '*' is universal", "PatientID", Wildcard("*"), None, True),
    ("C.2.2.2.4 Note 1 '**' is universal", "PatientID", Wildcard("**"), {"vr": "LO"}, True),
    # Single Value Matching
    ("C.2.2.2.1 exact", "PatientID", SingleValue("ABC"), "ABC", True),
    ("C.2.2.2.1 case-sensitive", "PatientID", SingleValue("abc"), "ABC", False),
    ("C.2.2.2.1 no substring", "PatientID", SingleValue("AB"), "ABC", False),
    ("C.2.2.2.1 padding (PS3.5 6.2)", "PatientID", SingleValue("ABC"), " ABC ", True),
    ("C.2.2.2.1 ST keeps leading spaces", "StudyComments", SingleValue("x"), " x", False),
    ("C.2.2.2.1 absent fails", "PatientID", SingleValue("ABC"), None, False),
    ("C.2.2.2.1 no Value fails", "PatientID", SingleValue("ABC"), {"vr": "LO"}, False),
    ("C.2.2.2.1 empty list fails", "PatientID", SingleValue("A"), {"vr": "LO", "Value": []}, False),
    ("C.2.2.2.1 null value fails", "PatientID", SingleValue("A"), [None], False),
    ("C.2.2.2.1 empty string fails", "PatientID", SingleValue("A"), [""], False),
    ("C.2.2.2.1 multi-valued: any", "ModalitiesInStudy", SingleValue("MR"), ["CT", "MR"], True),
    ("C.2.2.2.1 multi-valued: none", "ModalitiesInStudy", SingleValue("PT"), ["CT", "MR"], False),
    (
        "C.2.2.2.1 multi-valued with null",
        "ModalitiesInStudy",
        SingleValue("MR"),
        [None, "MR"],
        True,
    ),
    ("C.2.2.2.1 UI", "StudyInstanceUID", SingleValue("1.2.3"), "1.2.3", True),
    ("C.2.2.2.1 UI NUL padding", "StudyInstanceUID", SingleValue("1.2.3"), "1.2.3\x00", True),
    ("C.2.2.2.1 UI other", "StudyInstanceUID", SingleValue("1.2.3"), "1.2.30", False),
    ("C.2.2.2.1 IS number", "SeriesNumber", SingleValue("5"), 5, True),
    ("C.2.2.2.1 IS string", "SeriesNumber", SingleValue("+5"), "5", True),
    ("C.2.2.2.1 IS other", "SeriesNumber", SingleValue("6"), 5, False),
    ("C.2.2.2.1 DS 1.0 == 1", "SliceThickness", SingleValue("1.0"), 1, True),
    ("C.2.2.2.1 DS float", "SliceThickness", SingleValue("0.1"), 0.1, True),
    ("C.2.2.2.1 DS exponent", "SliceThickness", SingleValue("2.5e0"), "2.5", True),
    ("C.2.2.2.1 US", "Rows", SingleValue("512"), [512], True),
    ("C.2.2.2.1 AT any case", "FrameIncrementPointer", SingleValue("0018106a"), "0018106A", True),
    # Person names (C.2.2.2.1: PN may be case-insensitive)
    ("C.2.2.2.1 PN case", "PatientName", SingleValue("doe^john"), "Doe^John", True),
    ("C.2.2.2.1 PN trailing ^", "PatientName", SingleValue("Doe^John"), "Doe^John^^^", True),
    ("C.2.2.2.1 PN key trailing ^", "PatientName", SingleValue("Doe^John^"), "Doe^John", True),
    ("C.2.2.2.1 PN no prefix", "PatientName", SingleValue("Doe"), "Doe^John", False),
    ("C.2.2.2.1 PN other", "PatientName", SingleValue("Doe^Jane"), "Doe^John", False),
    (
        "C.2.2.2.1 PN ideographic group",
        "PatientName",
        SingleValue("山田^太郎"),
        pn("Yamada^Tarou", "山田^太郎", "やまだ^たろう"),
        True,
    ),
    (
        "C.2.2.2.1 PN phonetic group",
        "PatientName",
        SingleValue("やまだ^たろう"),
        pn("Yamada^Tarou", "山田^太郎", "やまだ^たろう"),
        True,
    ),
    (
        "C.2.2.2.1 PN groups one by one",
        "PatientName",
        SingleValue("Yamada^Tarou=山田^太郎"),
        pn("Yamada^Tarou", "山田^太郎"),
        True,
    ),
    (
        "C.2.2.2.1 PN groups mismatch",
        "PatientName",
        SingleValue("Yamada^Tarou=山田^花子"),
        pn("Yamada^Tarou", "山田^太郎"),
        False,
    ),
    (
        "C.2.2.2.1 PN empty key group is any",
        "PatientName",
        SingleValue("=山田^太郎"),
        pn("Yamada^Tarou", "山田^太郎"),
        True,
    ),
    (
        "C.2.2.2.1 PN bare string",
        "PatientName",
        SingleValue("doe^john"),
        {"vr": "PN", "Value": ["Doe^John=ドウ"]},
        True,
    ),
    ("C.2.2.2.1 PN empty name", "PatientName", SingleValue("Doe"), [{}], False),
    # List of UID Matching
    ("C.2.2.2.2 one of", "StudyInstanceUID", UidList(("1.2", "1.3")), "1.3", True),
    ("C.2.2.2.2 none of", "StudyInstanceUID", UidList(("1.2", "1.3")), "1.4", False),
    ("C.2.2.2.2 absent", "StudyInstanceUID", UidList(("1.2", "1.3")), None, False),
    ("C.2.2.2.2 multi-valued", "SOPClassesInStudy", UidList(("9", "1.3")), ["1.2", "1.3"], True),
    # Wild Card Matching
    ("C.2.2.2.4 ?", "PatientID", Wildcard("A?C"), "ABC", True),
    ("C.2.2.2.4 ? is one char", "PatientID", Wildcard("A?C"), "AC", False),
    ("C.2.2.2.4 * empty run", "PatientID", Wildcard("ABC*"), "ABC", True),
    ("C.2.2.2.4 * inside", "PatientID", Wildcard("A*C"), "AxyzC", True),
    ("C.2.2.2.4 anchored", "PatientID", Wildcard("B*"), "ABC", False),
    ("C.2.2.2.4 case-sensitive", "PatientID", Wildcard("a*"), "ABC", False),
    ("C.2.2.2.4 regex dot literal", "PatientID", Wildcard("a.b(c*"), "a.b(cdef", True),
    ("C.2.2.2.4 regex dot no wild", "PatientID", Wildcard("a.b(c*"), "axb(cdef", False),
    ("C.2.2.2.4 regex class literal", "PatientID", Wildcard("[x]*"), "[x]yz", True),
    ("C.2.2.2.4 regex plus literal", "PatientID", Wildcard("a+b?"), "aab", False),
    ("C.2.2.2.4 regex anchors literal", "PatientID", Wildcard("^a$*"), "^a$!", True),
    ("C.2.2.2.4 backslash literal", "StudyComments", Wildcard("a\\d*"), "a\\d1", True),
    ("C.2.2.2.4 LT newline", "StudyComments", Wildcard("a*b"), "a\nb", True),
    ("C.2.2.2.4 absent fails", "PatientID", Wildcard("A*"), None, False),
    ("C.2.2.2.4 empty fails", "PatientID", Wildcard("A*"), [""], False),
    ("C.2.2.2.4 multi-valued", "ModalitiesInStudy", Wildcard("M?"), ["CT", "MR"], True),
    ("C.2.2.2.4 PN case-insensitive", "PatientName", Wildcard("doe*"), "Doe^John", True),
    ("C.2.2.2.4 PN ?", "PatientName", Wildcard("D?E^*"), "Doe^John", True),
    ("C.2.2.2.4 PN any group", "PatientName", Wildcard("山*"), pn("Yamada", "山田"), True),
    ("C.2.2.2.4 PN by group", "PatientName", Wildcard("Y*=山*"), pn("Yamada", "山田"), True),
    ("C.2.2.2.4 PN by group no", "PatientName", Wildcard("Y*=X*"), pn("Yamada", "山田"), False),
    ("C.2.2.2.4 PN accents count", "PatientName", Wildcard("zoe*"), "Zoë^Anne", False),
    # Range Matching: DA
    ("C.2.2.2.5.1 inside", "StudyDate", Range("20240101", "20240131"), "20240115", True),
    ("C.2.2.2.5.1 lower incl.", "StudyDate", Range("20240101", "20240131"), "20240101", True),
    ("C.2.2.2.5.1 upper incl.", "StudyDate", Range("20240101", "20240131"), "20240131", True),
    ("C.2.2.2.5.1 after", "StudyDate", Range("20240101", "20240131"), "20240201", False),
    ("C.2.2.2.5.1 before", "StudyDate", Range("20240101", "20240131"), "20231231", False),
    ("C.2.2.2.5.1 -date", "StudyDate", Range(None, "20240101"), "19000101", True),
    ("C.2.2.2.5.1 -date after", "StudyDate", Range(None, "20240101"), "20240102", False),
    ("C.2.2.2.5.1 date-", "StudyDate", Range("20240101", None), "29991231", True),
    ("C.2.2.2.5.1 date- before", "StudyDate", Range("20240101", None), "20231231", False),
    ("C.2.2.2.5.1 ACR-NEMA stored", "StudyDate", Range("20240101", None), "2024.01.15", True),
    ("C.2.2.2.5.1 garbage stored", "StudyDate", Range("20240101", None), "yesterday", False),
    ("C.2.2.2.5.1 absent", "StudyDate", Range("20240101", None), None, False),
    ("C.2.2.2.5.1 multi-valued", "StudyDate", Range("20240101", None), ["2020", "20240102"], True),
    ("C.2.2.2.1 DA single", "StudyDate", SingleValue("20240115"), "20240115", True),
    ("C.2.2.2.1 DA single other", "StudyDate", SingleValue("20240115"), "20240116", False),
    # Range Matching: TM and its precision (PS3.5 Table 6.2-1)
    ("C.2.2.2.5.2 inside", "StudyTime", Range("1000", "1200"), "113000.123", True),
    ("C.2.2.2.5.2 upper minute", "StudyTime", Range("1000", "1200"), "120059.999999", True),
    ("C.2.2.2.5.2 after", "StudyTime", Range("1000", "1200"), "1201", False),
    ("C.2.2.2.5.2 lower hour", "StudyTime", Range("10", None), "095959.999999", False),
    ("C.2.2.2.5.2 -hour incl.", "StudyTime", Range(None, "10"), "105959.999999", True),
    ("C.2.2.2.5.2 -hour next", "StudyTime", Range(None, "10"), "11", False),
    ("C.2.2.2.5.2 stored 10 = 100000", "StudyTime", Range("1000", "1030"), "10", True),
    ("C.2.2.2.5.2 stored 10 < 1001", "StudyTime", Range("1001", "1030"), "10", False),
    ("C.2.2.2.5.2 fraction", "StudyTime", Range("103000.5", None), "103000.49", False),
    ("C.2.2.2.5.2 fraction incl.", "StudyTime", Range(None, "103000.5"), "103000.59", True),
    ("C.2.2.2.5.2 ACR-NEMA stored", "StudyTime", Range("1000", "1100"), "10:30:00", True),
    ("C.2.2.2.5.2 bad stored", "StudyTime", Range("1000", "1100"), "2500", False),
    ("C.2.2.2.1 TM single minute", "StudyTime", SingleValue("1030"), "103059.5", True),
    ("C.2.2.2.1 TM single next", "StudyTime", SingleValue("1030"), "1031", False),
    ("C.2.2.2.1 TM single hour", "StudyTime", SingleValue("10"), "100000", True),
    # Range Matching: DT
    (
        "C.2.2.2.5.3 day ceil",
        "AcquisitionDateTime",
        Range("20240101", "20240102"),
        "20240102235959",
        True,
    ),
    (
        "C.2.2.2.5.3 next day",
        "AcquisitionDateTime",
        Range("20240101", "20240102"),
        "20240103",
        False,
    ),
    ("C.2.2.2.5.3 year", "AcquisitionDateTime", SingleValue("2024"), "20240615120000", True),
    ("C.2.2.2.5.3 year other", "AcquisitionDateTime", SingleValue("2024"), "2025", False),
    ("C.2.2.2.5.3 month ceil", "AcquisitionDateTime", Range(None, "202402"), "20240229", True),
    (
        "C.2.2.2.5.3 d both offsets (UTC 11:30 >= 11:00)",
        "AcquisitionDateTime",
        Range("20240101120000+0100", None),
        "20240101113000+0000",
        True,
    ),
    (
        "C.2.2.2.5.3 d both offsets (UTC 10:30 < 11:00)",
        "AcquisitionDateTime",
        Range("20240101120000+0100", None),
        "20240101123000+0200",
        False,
    ),
    (
        "C.2.2.2.5.3 one offset: naive",
        "AcquisitionDateTime",
        Range("20240101120000", None),
        "20240101113000-0500",
        False,
    ),
    (
        "C.2.2.2.5.3 single with offsets",
        "AcquisitionDateTime",
        SingleValue("20240101120000+0000"),
        "20240101130000+0100",
        True,
    ),
    ("C.2.2.2.5.3 bad stored", "AcquisitionDateTime", Range("2024", None), "2024+9999", False),
]


@pytest.mark.parametrize(
    ("clause", "keyword", "matcher", "stored", "expected"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_clause(clause: str, keyword: str, matcher: Matcher, stored: Any, expected: bool) -> None:
    data = entity() if stored is None else entity(**{keyword: stored})
    assert match_key(key(keyword, matcher), data) is expected, clause


def item(**attributes: Any) -> dict[str, dict[str, Any]]:
    return entity(**attributes)


SPS = entity(
    RequestAttributesSequence={
        "vr": "SQ",
        "Value": [
            item(ScheduledProcedureStepID="SPS1", RequestedProcedureID="RP1"),
            item(ScheduledProcedureStepID="SPS2", RequestedProcedureID="RP2"),
        ],
    }
)


@pytest.mark.parametrize(
    ("clause", "keys", "data", "expected"),
    [
        (
            "C.2.2.2.6 one item matches all",
            (key("ScheduledProcedureStepID", SingleValue("SPS2")),),
            SPS,
            True,
        ),
        (
            "C.2.2.2.6 same item needed",
            (
                key("ScheduledProcedureStepID", SingleValue("SPS1")),
                key("RequestedProcedureID", SingleValue("RP2")),
            ),
            SPS,
            False,
        ),
        (
            "C.2.2.2.6 wildcard inside",
            (
                key("ScheduledProcedureStepID", Wildcard("SPS*")),
                key("RequestedProcedureID", SingleValue("RP2")),
            ),
            SPS,
            True,
        ),
        ("C.2.2.2.6 no item keys", (), SPS, True),
        ("C.2.2.2.6 no item keys, absent", (), entity(), True),
        (
            "C.2.2.2.6 absent",
            (key("ScheduledProcedureStepID", SingleValue("SPS1")),),
            entity(),
            False,
        ),
        (
            "C.2.2.2.6 empty sequence",
            (key("ScheduledProcedureStepID", SingleValue("SPS1")),),
            entity(RequestAttributesSequence={"vr": "SQ", "Value": []}),
            False,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_sequence(clause: str, keys: tuple[MatchKey, ...], data: Any, expected: bool) -> None:
    sequence = key("RequestAttributesSequence", SequenceMatch(keys))
    assert match_key(sequence, data) is expected, clause


def test_sequence_nested() -> None:
    """C.2.2.2.6: Sequence Matching is recursive."""
    code = item(CodeValue="T-1", CodingSchemeDesignator="SRT")
    step = item(ScheduledProtocolCodeSequence={"vr": "SQ", "Value": [code]})
    data = entity(RequestAttributesSequence={"vr": "SQ", "Value": [step]})
    inner = key(
        "ScheduledProtocolCodeSequence", SequenceMatch((key("CodeValue", Wildcard("T-*")),))
    )
    assert match_key(key("RequestAttributesSequence", SequenceMatch((inner,))), data)
    other = key(
        "ScheduledProtocolCodeSequence", SequenceMatch((key("CodeValue", SingleValue("X")),))
    )
    assert not match_key(key("RequestAttributesSequence", SequenceMatch((other,))), data)


FUZZY = [
    ("prefix of a word", "joh", "Doe^John", True),
    ("words in any order", "jo do", "Doe^John", True),
    ("components", "DOE^J", "Doe^John", True),
    ("whole family name", "doe", "Doe^John", True),
    ("every word must match", "doe smith", "Doe^John", False),
    ("start of a word only", "ohn", "Doe^John", False),
    ("accent in stored", "zoe", "Zoë^Anne", True),
    ("accent in key", "Zoë", "Zoe^Anne", True),
    ("apostrophe ignored", "obrien", "O'Brien^Pat", True),
    ("hyphenated name", "jones", "Smith-Jones^Ann", True),
    ("other groups", "山田", pn("Yamada^Tarou", "山田^太郎"), True),
    ("empty key words", "^", "Doe^John", False),
]


@pytest.mark.parametrize(
    ("why", "value", "stored", "expected"), FUZZY, ids=[case[0] for case in FUZZY]
)
def test_fuzzy_person_name(why: str, value: str, stored: Any, expected: bool) -> None:
    """PS3.18 8.3.4.2 fuzzy matching: each key word starts a stored word, accents ignored."""
    data = entity(PatientName=stored)
    assert match_key(key("PatientName", SingleValue(value)), data, fuzzy=True) is expected, why


def test_fuzzy_off_is_literal() -> None:
    data = entity(PatientName="Doe^John")
    assert not match_key(key("PatientName", SingleValue("joh")), data)


def test_fuzzy_wildcard_ignores_accents() -> None:
    data = entity(PatientName="Zoë^Anne")
    assert match_key(key("PatientName", Wildcard("zoe*")), data, fuzzy=True)


def test_fuzzy_only_for_person_names() -> None:
    """Fuzzy matching is of Person Name Attributes (PS3.18 8.3.4.2); others stay literal."""
    data = entity(PatientID="ABC123")
    assert not match_key(key("PatientID", SingleValue("abc")), data, fuzzy=True)


def test_matches_is_and_of_keys() -> None:
    data = entity(PatientID="A", StudyDate="20240101")
    patient = key("PatientID", SingleValue("A"))
    assert matches([], data)
    assert matches([patient, key("StudyDate", Range("20240101", None))], data)
    assert not matches([patient, key("StudyDate", Range("20240102", None))], data)


def test_invalid_range_bound_raises() -> None:
    """A key that the parser would have refused is a caller error, not a silent non-match."""
    with pytest.raises(InvalidQueryError, match="DA"):
        match_key(key("StudyDate", Range("2024", None)), entity(StudyDate="20240101"))


def test_range_on_other_vr_raises() -> None:
    with pytest.raises(InvalidQueryError, match="only defined for DA, TM and DT"):
        match_key(key("PatientID", Range("A", "B")), entity(PatientID="A"))


def test_lower_case_tag_in_entity_still_found() -> None:
    """PS3.18 F.2.1.1 wants upper-case tags; a key given in lower case still finds them."""
    data = entity(PatientID="A")
    assert match_key(MatchKey("00100020", "LO", SingleValue("A")), data)
    assert match_key(MatchKey("0020000d", "UI", UidList(("1",))), entity(StudyInstanceUID="1"))


# Properties -------------------------------------------------------------------------------


def da(day: dt.date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def tm(moment: dt.time) -> str:
    return moment.strftime("%H%M%S.%f")


def reference_wildcard(pattern: str, text: str) -> bool:
    """Wild card semantics of C.2.2.2.4 by dynamic programming, independent of `re`."""
    rows, cols = len(pattern), len(text)
    table = [[False] * (cols + 1) for _ in range(rows + 1)]
    table[0][0] = True
    for i in range(1, rows + 1):
        table[i][0] = table[i - 1][0] and pattern[i - 1] == "*"
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            p = pattern[i - 1]
            if p == "*":
                table[i][j] = table[i - 1][j] or table[i][j - 1]
            else:
                table[i][j] = table[i - 1][j - 1] and (p in ("?", text[j - 1]))
    return table[rows][cols]


# Letters, regex metacharacters and the wild cards; no spaces (padding) or backslashes.
SYMBOLS = "aAbB.()[]+$^|{}-"
patterns = st.text(alphabet=SYMBOLS + "*?", max_size=8)
texts = st.text(alphabet=SYMBOLS + "*?", min_size=1, max_size=10)


@PROPERTY
@given(pattern=patterns, text=texts)
def test_wildcard_equals_reference(pattern: str, text: str) -> None:
    """C.2.2.2.4 on an LO attribute: case-sensitive '*' and '?'."""
    data = entity(PatientID=text)
    assert match_key(key("PatientID", Wildcard(pattern)), data) == reference_wildcard(pattern, text)


NAME_SYMBOLS = "aAbBcC.()[]+$|{}-"


@PROPERTY
@given(
    pattern=st.text(alphabet=NAME_SYMBOLS + "*?", max_size=8),
    text=st.text(alphabet=NAME_SYMBOLS, min_size=1, max_size=10),
)
def test_pn_wildcard_equals_case_insensitive_reference(pattern: str, text: str) -> None:
    """C.2.2.2.4 on a PN attribute: the same, ignoring case."""
    data = entity(PatientName=text)
    expected = reference_wildcard(pattern.lower(), text.lower())
    assert match_key(key("PatientName", Wildcard(pattern)), data) == expected


values_by_keyword = st.one_of(
    st.tuples(st.just("PatientID"), st.text(min_size=1).filter(lambda t: t.strip(" "))),
    st.tuples(st.just("StudyDescription"), st.text(min_size=1).filter(lambda t: t.strip(" "))),
    st.tuples(st.just("Modality"), st.from_regex(r"[A-Z0-9_]{1,16}", fullmatch=True)),
    st.tuples(
        st.just("StudyInstanceUID"), st.from_regex(r"[1-9]\d{0,5}(\.\d{1,5}){1,8}", fullmatch=True)
    ),
    st.tuples(
        st.just("PatientName"),
        st.text(alphabet="abcXYZ^ éü", min_size=1).filter(lambda t: t.strip(" ^")),
    ),
    st.tuples(st.just("StudyDate"), st.dates().map(da)),
    st.tuples(st.just("StudyTime"), st.times().map(tm)),
    st.tuples(st.just("SeriesNumber"), st.integers(-(2**31), 2**31 - 1).map(str)),
)


@PROPERTY
@given(pair=values_by_keyword)
def test_single_value_matches_itself(pair: tuple[str, str]) -> None:
    """C.2.2.2.1: a value always matches an entity holding exactly that value."""
    keyword, value = pair
    assert match_key(key(keyword, SingleValue(value)), entity(**{keyword: value}))


@PROPERTY
@given(
    lower=st.none() | st.dates(),
    upper=st.none() | st.dates(),
    day=st.dates(),
)
def test_date_range_is_inclusive_interval(
    lower: dt.date | None, upper: dt.date | None, day: dt.date
) -> None:
    """C.2.2.2.5.1: "<d1>-<d2>", "-<d1>" and "<d1>-" are inclusive intervals of dates."""
    matcher = Range(None if lower is None else da(lower), None if upper is None else da(upper))
    expected = (lower is None or lower <= day) and (upper is None or day <= upper)
    assert match_key(key("StudyDate", matcher), entity(StudyDate=da(day))) is expected


@PROPERTY
@given(lower=st.none() | st.times(), upper=st.none() | st.times(), moment=st.times())
def test_full_precision_time_range_is_inclusive_interval(
    lower: dt.time | None, upper: dt.time | None, moment: dt.time
) -> None:
    """C.2.2.2.5.2 with full-precision times: plain comparison of times within a day."""
    matcher = Range(None if lower is None else tm(lower), None if upper is None else tm(upper))
    expected = (lower is None or lower <= moment) and (upper is None or moment <= upper)
    assert match_key(key("StudyTime", matcher), entity(StudyTime=tm(moment))) is expected


@PROPERTY
@given(moment=st.times(), digits=st.sampled_from([2, 4, 6]))
def test_reduced_precision_time_covers_its_unit(moment: dt.time, digits: int) -> None:
    """PS3.5 6.2: "HH" or "HHMM" as a key stands for the whole hour or minute."""
    full = tm(moment)
    assert match_key(key("StudyTime", SingleValue(full[:digits])), entity(StudyTime=full))
    assert match_key(key("StudyTime", Range(None, full[:digits])), entity(StudyTime=full))
    assert match_key(key("StudyTime", Range(full[:digits], None)), entity(StudyTime=full))


@PROPERTY
@given(
    moment=st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    offset=st.integers(-12 * 60, 14 * 60),
    shift=st.integers(-12 * 60, 14 * 60),
)
def test_datetime_offsets_compare_in_utc(moment: dt.datetime, offset: int, shift: int) -> None:
    """C.2.2.2.5.3 d: the same instant written in two zones matches itself as a single value."""

    def text(when: dt.datetime, minutes: int) -> str:
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        return when.strftime("%Y%m%d%H%M%S.%f") + zone

    stored = text(moment, offset)
    same = text(moment + dt.timedelta(minutes=shift - offset), shift)
    data = entity(AcquisitionDateTime=stored)
    assert match_key(key("AcquisitionDateTime", SingleValue(same)), data)
    later = text(moment + dt.timedelta(minutes=shift - offset, microseconds=1), shift)
    assert not match_key(key("AcquisitionDateTime", Range(later, None)), data)
