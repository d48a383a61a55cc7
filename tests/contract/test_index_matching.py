"""Index queries against the reference matcher (DESIGN.md key idea 2), with Hypothesis.

Random small archives use small alphabets (names differing in case, accents and component
groups; legacy and invalid dates; multi-valued accession numbers; shared patient IDs) so that
random queries match often. For every query the adapter's page must equal what the reference
matcher keeps from all rows of the level, whatever SQL the adapter compiled.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hounsfield.domain.levels import (
    MODALITIES_IN_STUDY,
    MODALITY,
    PATIENT_ID,
    PATIENT_NAME,
    SERIES_INSTANCE_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from hounsfield.domain.matching import matches
from hounsfield.domain.model import Level
from hounsfield.domain.query import (
    Matcher,
    MatchKey,
    Query,
    Range,
    SingleValue,
    UidList,
    Universal,
    Wildcard,
)
from hounsfield.ports.index import NewInstance
from tests.contract.conftest import IndexHarness
from tests.factories import make_new_instance

NAMES: list[Any] = [
    "Doe^John",
    "DOE^JANE",
    "doe",
    "Dö^Ann",
    "Smith^Al^^",
    "ıvan^Iİ",
    "STRASSE^ß",
    {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"},
    [" Multi^One", "Second^Two"],
    None,
]
PATIENT_IDS = ["P1", "P2", "p1", " P3 ", None]
DATES: list[Any] = ["20240101", "20240102", "2024.01.02", "2024.01.02", "garbage", None]
ACCESSIONS: list[Any] = ["A1", "a1", ["A1", "B1"], ["A1", "B1"], None]
MODALITIES = ["CT", "MR", "US", None]
REFERRING = ["Ref^Doctor", "ref^other", None]
PARTITION = "default"


def _alphabetic(name: Any) -> list[str]:
    if name is None:
        return []
    if isinstance(name, dict):
        return [str(v) for v in name.values()]
    if isinstance(name, list):
        return [str(v) for v in name]
    return [str(name)]


@st.composite
def archives(draw: st.DrawFn) -> list[NewInstance]:
    patients = draw(
        st.lists(
            st.tuples(st.sampled_from(PATIENT_IDS), st.sampled_from(NAMES)), min_size=2, max_size=4
        )
    )
    instances: list[NewInstance] = []
    for s in range(draw(st.integers(2, 6))):
        patient_id, name = draw(st.sampled_from(patients))
        study_uid = f"1.2.3.{s + 1}"
        date = draw(st.sampled_from(DATES))
        accession = draw(st.sampled_from(ACCESSIONS))
        referring = draw(st.sampled_from(REFERRING))
        for e in range(draw(st.integers(1, 3))):
            series_uid = f"{study_uid}.{e + 1}"
            modality = draw(st.sampled_from(MODALITIES))
            for i in range(draw(st.integers(1, 2))):
                instances.append(
                    make_new_instance(
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=f"{series_uid}.{i + 1}",
                        patient_id=patient_id,
                        patient_name=name,
                        study_date=date,
                        modality=modality,
                        AccessionNumber=accession,
                        ReferringPhysicianName=referring,
                    )
                )
    return instances


def _text_matcher(draw: st.DrawFn, base: str) -> Matcher:
    cut = draw(st.integers(max(0, len(base) - 4), len(base)))
    text = base[:cut]
    text = draw(st.sampled_from([text, text.upper(), text.lower(), text.swapcase()]))
    text += draw(st.sampled_from(["", "*", "*", "?*", "*n", "?"]))
    if not text.strip(" ") or not text.strip("*"):
        return Universal()
    return Wildcard(text) if "*" in text or "?" in text else SingleValue(text)


@st.composite
def match_keys(draw: st.DrawFn, archive: list[NewInstance]) -> MatchKey:
    kind = draw(
        st.sampled_from(
            ["name", "referring", "pid", "date", "accession", "modalities", "modality", "uid"]
        )
    )
    if kind in ("name", "referring"):
        tag = PATIENT_NAME if kind == "name" else "00080090"
        stored = [
            str(group)
            for inst in archive
            for attrs in (inst.patient_attrs, inst.study_attrs)
            for value in attrs.get(tag, {}).get("Value", [])
            for group in value.values()
        ]
        extra = ["do", "=山田", "Yamada=", "x", "IVAN", "strasse", "DO^ANN"]
        base = draw(st.sampled_from(stored + extra) if stored else st.sampled_from(extra))
        return MatchKey(tag, "PN", _text_matcher(draw, base))
    if kind == "pid":
        return MatchKey(
            PATIENT_ID, "LO", _text_matcher(draw, draw(st.sampled_from(["P1", "p1", "P3"])))
        )
    if kind == "accession":
        base = draw(st.sampled_from(["A1", "B1", "B1", "a1"]))
        return MatchKey("00080050", "SH", _text_matcher(draw, base))
    if kind == "date":
        valid = ["20231231", "20240101", "20240102", "20240103"]
        lower = draw(st.sampled_from([None, *valid]))
        upper = draw(st.sampled_from([None, *valid]))
        if lower is not None and upper is not None and lower > upper:
            lower, upper = upper, lower
        if lower is not None and draw(st.booleans()):
            return MatchKey("00080020", "DA", SingleValue(lower))
        return MatchKey("00080020", "DA", Range(lower, upper))
    if kind in ("modalities", "modality"):
        tag = MODALITIES_IN_STUDY if kind == "modalities" else MODALITY
        return MatchKey(tag, "CS", _text_matcher(draw, draw(st.sampled_from(["CT", "MR", "US"]))))
    tag, attr = draw(
        st.sampled_from(
            [
                (STUDY_INSTANCE_UID, "study_uid"),
                (SERIES_INSTANCE_UID, "series_uid"),
                (SOP_INSTANCE_UID, "sop_uid"),
            ]
        )
    )
    known = [*sorted({getattr(i, attr) for i in archive}), "9.9.9"]
    chosen = draw(st.lists(st.sampled_from(known), min_size=1, max_size=3, unique=True))
    if len(chosen) == 1:
        return MatchKey(tag, "UI", SingleValue(chosen[0]))
    return MatchKey(tag, "UI", UidList(tuple(chosen)))


@st.composite
def queries(draw: st.DrawFn, archive: list[NewInstance]) -> Query:
    levels = [Level.PATIENT, Level.STUDY, Level.STUDY, Level.SERIES, Level.IMAGE]
    return Query(
        level=draw(st.sampled_from(levels)),
        keys=tuple(draw(st.lists(match_keys(archive), min_size=1, max_size=3))),
        fuzzy=draw(st.booleans()),
        limit=draw(st.sampled_from([None, 1, 2, 5])),
        offset=draw(st.sampled_from([0, 0, 1, 3])),
        partition=PARTITION,
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[NewInstance], list[Query]]:
    """One archive and many queries on it (building the archive is the costly part)."""
    archive = draw(archives())
    return archive, draw(st.lists(queries(archive), min_size=10, max_size=25))


def _entities(archive: list[NewInstance], level: Level) -> int:
    if level is Level.STUDY:
        return len({i.study_uid for i in archive})
    if level is Level.SERIES:
        return len({i.series_uid for i in archive})
    if level is Level.IMAGE:
        return len(archive)
    first_patient: dict[str, str] = {}
    for inst in archive:
        element = inst.patient_attrs.get(PATIENT_ID, {})
        pid = str((element.get("Value") or [""])[0]).strip(" ")
        first_patient.setdefault(inst.study_uid, pid)
    return len(set(first_patient.values()))


_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@pytest.mark.parametrize("index_factory", ["sqlite"], indirect=True)
@settings(max_examples=200, **_SETTINGS)  # type: ignore[arg-type]
@given(case=cases())
def test_queries_equal_the_reference_matcher(
    index_factory: IndexHarness, case: tuple[list[NewInstance], list[Query]]
) -> None:
    check_against_the_matcher(index_factory, case)


@pytest.mark.parametrize("index_factory", ["postgresql"], indirect=True)
@settings(max_examples=80, **_SETTINGS)  # type: ignore[arg-type]
@given(case=cases())
def test_postgresql_queries_equal_the_reference_matcher(
    index_factory: IndexHarness, case: tuple[list[NewInstance], list[Query]]
) -> None:
    """Fewer examples than SQLite: each statement is a round trip to a server here, and the
    SQL under test is the same (`sql.query`), apart from PostgreSQL's own LIKE (see
    test_index_contract.py: test_name_wild_cards_without_a_literal_prefix)."""
    check_against_the_matcher(index_factory, case)


def check_against_the_matcher(
    index_factory: IndexHarness, case: tuple[list[NewInstance], list[Query]]
) -> None:
    archive, queries = case
    index = index_factory()
    try:
        index.commit(archive, [])
        # The same UIDs with other names in another partition must never show up.
        index.commit(
            [
                make_new_instance(
                    partition="other",
                    study_uid=i.study_uid,
                    series_uid=i.series_uid,
                    sop_uid=i.sop_uid,
                    patient_name="Doe^John",
                    study_date="20240101",
                    modality="CT",
                )
                for i in archive
            ],
            [],
        )
        everything = {level: index.query(Query(level, partition=PARTITION)).rows for level in Level}
        for level, rows in everything.items():
            assert len(rows) == _entities(archive, level)
        for query in queries:
            kept = [r for r in everything[query.level] if matches(query.keys, r, fuzzy=query.fuzzy)]
            end = None if query.limit is None else query.offset + query.limit
            page = index.query(query)
            assert page.rows == kept[query.offset : end], query
            assert page.more == (end is not None and len(kept) > end), query
    finally:
        index_factory.discard(index)
