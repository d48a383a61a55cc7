"""The IndexStore contract (ports/index.py), run against every index adapter.

Two-phase ingest (DESIGN.md key idea 3), the computed attributes of PS3.4 C.3.4 and C.6.1.1,
partition isolation on every method (key idea 6), paging, the outbox (key idea 4), remote
AEs, statistics, concurrency and durability.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hounsfield.domain.levels import (
    MODALITIES_IN_STUDY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    PATIENT_ID,
    PATIENT_NAME,
    SERIES_INSTANCE_UID,
    SOP_CLASSES_IN_STUDY,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.query import (
    Matcher,
    MatchKey,
    Query,
    Range,
    SingleValue,
    UidList,
    Wildcard,
)
from hounsfield.ports.index import (
    BeginOutcome,
    Event,
    IndexStore,
    NewInstance,
    RemoteAE,
)
from tests.contract.conftest import IndexHarness
from tests.factories import make_new_instance as make
from tests.factories import new_uid

NEW, DUPLICATE, CONFLICT, IN_PROGRESS = (
    BeginOutcome.NEW,
    BeginOutcome.DUPLICATE,
    BeginOutcome.CONFLICT,
    BeginOutcome.IN_PROGRESS,
)
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ACCESSION_NUMBER = "00080050"
STUDY_DATE = "00080020"
MODALITY = "00080060"


def store(index: IndexStore, *instances: NewInstance, events: tuple[Event, ...] = ()) -> None:
    assert index.begin(instances) == [NEW] * len(instances)
    index.commit(instances, events)


def key(tag: str, vr: str, matcher: Matcher) -> MatchKey:
    return MatchKey(tag, vr, matcher)


def q(level: Level, *keys: MatchKey, **options: Any) -> Query:
    return Query(level, keys=keys, **options)


def values(row: DicomJson, tag: str) -> list[Any]:
    return list(row.get(tag, {}).get("Value", []))


def uids(index: IndexStore, query: Query, tag: str) -> list[str]:
    return [values(row, tag)[0] for row in index.query(query).rows]


def by_study(index: IndexStore, study_uid: str, partition: str = "default") -> DicomJson:
    rows = index.query(
        q(Level.STUDY, key(STUDY_INSTANCE_UID, "UI", SingleValue(study_uid)), partition=partition)
    ).rows
    assert len(rows) == 1
    return rows[0]


# -- two-phase ingest -----------------------------------------------------------------------


def test_begin_then_commit_makes_instances_visible(index: IndexStore) -> None:
    inst = make()
    assert index.begin([inst]) == [NEW]
    assert index.query(q(Level.STUDY)).rows == []
    assert index.query(q(Level.IMAGE)).rows == []
    assert index.instances("default", inst.study_uid) == []
    assert not index.level_exists("default", Level.IMAGE, inst.sop_uid)
    assert not index.level_exists("default", Level.STUDY, inst.study_uid)
    assert index.stats() == []

    index.commit([inst], [])

    assert uids(index, q(Level.IMAGE), SOP_INSTANCE_UID) == [inst.sop_uid]
    assert index.level_exists("default", Level.IMAGE, inst.sop_uid)
    assert index.level_exists("default", Level.SERIES, inst.series_uid)
    assert index.level_exists("default", Level.STUDY, inst.study_uid)
    assert index.level_exists("default", Level.PATIENT, "PID-1")
    [stored] = index.instances("default", inst.study_uid)
    assert (stored.sop_uid, stored.blob_key, stored.sha256, stored.size) == (
        inst.sop_uid,
        inst.blob_key,
        inst.sha256,
        inst.size,
    )
    assert stored.pixel == inst.pixel
    assert stored.bulk_ranges == inst.bulk_ranges
    assert stored.number_of_frames == 1
    assert [doc for _, doc in index.metadata("default", inst.study_uid)] == [inst.metadata]


def test_begin_classifies_duplicates_conflicts_and_uploads_in_progress(index: IndexStore) -> None:
    stored = make()
    store(index, stored)
    pending = make()
    assert index.begin([pending]) == [NEW]

    other_study = make(sop_uid=stored.sop_uid)
    other_series = make(study_uid=stored.study_uid, sop_uid=stored.sop_uid)
    series_elsewhere = make(series_uid=stored.series_uid)  # a series lives in one study
    assert index.begin([stored, other_study, other_series, pending, series_elsewhere]) == [
        DUPLICATE,
        CONFLICT,
        CONFLICT,
        IN_PROGRESS,
        CONFLICT,
    ]
    same_twice = make()
    assert index.begin([same_twice, same_twice]) == [NEW, IN_PROGRESS]


def test_commit_is_idempotent_and_abort_drops_pending_rows(index: IndexStore) -> None:
    inst = make()
    store(index, inst)
    index.commit([inst], [])
    assert by_study(index, inst.study_uid)[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [1]

    aborted = make()
    assert index.begin([aborted]) == [NEW]
    index.abort("default", [aborted.sop_uid, inst.sop_uid])
    assert index.begin([aborted]) == [NEW]  # the pending row is gone
    assert index.level_exists("default", Level.IMAGE, inst.sop_uid)  # committed rows stay


def test_sweep_pending_removes_old_pending_rows_only(index: IndexStore) -> None:
    committed, pending = make(), make()
    store(index, committed)
    assert index.begin([pending]) == [NEW]
    assert index.sweep_pending(datetime.now(UTC) - timedelta(hours=1)) == []
    assert index.sweep_pending(datetime.now(UTC) + timedelta(seconds=5)) == [pending.blob_key]
    assert index.begin([pending]) == [NEW]
    assert index.level_exists("default", Level.IMAGE, committed.sop_uid)


def test_commit_without_begin_stores_the_instance(index: IndexStore) -> None:
    inst = make()
    index.commit([inst], [])
    assert index.level_exists("default", Level.IMAGE, inst.sop_uid)
    assert index.begin([inst]) == [DUPLICATE]


# -- computed attributes ----------------------------------------------------------------------


def test_counts_modalities_and_sop_classes_follow_commits_and_deletes(
    index: IndexStore,
) -> None:
    study, ct, mr = new_uid(), new_uid(), new_uid()
    a = make(study_uid=study, series_uid=ct, InstanceNumber=2)
    b = make(study_uid=study, series_uid=ct, InstanceNumber=1)
    c = make(study_uid=study, series_uid=mr, modality="MR", sop_class_uid=SECONDARY_CAPTURE)
    other = make(patient_id="PID-1", modality="US")
    store(index, a, b)
    store(index, c, other)

    row = by_study(index, study)
    assert row[MODALITIES_IN_STUDY] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert values(row, SOP_CLASSES_IN_STUDY) == sorted([a.sop_class_uid, SECONDARY_CAPTURE])
    assert values(row, NUMBER_OF_STUDY_RELATED_SERIES) == [2]
    assert values(row, NUMBER_OF_STUDY_RELATED_INSTANCES) == [3]
    assert values(row, STUDY_INSTANCE_UID) == [study]
    series = index.query(q(Level.SERIES, key(STUDY_INSTANCE_UID, "UI", SingleValue(study))))
    assert {
        values(r, SERIES_INSTANCE_UID)[0]: values(r, NUMBER_OF_SERIES_RELATED_INSTANCES)[0]
        for r in series.rows
    } == {ct: 2, mr: 1}
    assert all(values(r, STUDY_INSTANCE_UID) == [study] for r in series.rows)
    [patient] = index.query(q(Level.PATIENT)).rows
    assert values(patient, NUMBER_OF_PATIENT_RELATED_STUDIES) == [2]
    assert values(patient, NUMBER_OF_PATIENT_RELATED_SERIES) == [3]
    assert values(patient, NUMBER_OF_PATIENT_RELATED_INSTANCES) == [4]
    assert [i.sop_uid for i in index.instances("default", study, ct)] == [b.sop_uid, a.sop_uid]

    deleted = index.delete("default", study, mr)
    assert (deleted.instances, deleted.blob_keys) == (1, [c.blob_key])
    row = by_study(index, study)
    assert values(row, MODALITIES_IN_STUDY) == ["CT"]
    assert values(row, SOP_CLASSES_IN_STUDY) == [a.sop_class_uid]
    assert values(row, NUMBER_OF_STUDY_RELATED_SERIES) == [1]
    assert values(row, NUMBER_OF_STUDY_RELATED_INSTANCES) == [2]
    modality_mr = key(MODALITIES_IN_STUDY, "CS", SingleValue("MR"))
    assert index.query(q(Level.STUDY, modality_mr)).rows == []

    deleted = index.delete("default", study, ct, a.sop_uid)
    assert deleted.blob_keys == [a.blob_key]
    assert values(by_study(index, study), NUMBER_OF_STUDY_RELATED_INSTANCES) == [1]

    assert index.delete("default", study).blob_keys == [b.blob_key]
    assert not index.level_exists("default", Level.STUDY, study)
    assert not index.level_exists("default", Level.SERIES, ct)
    [patient] = index.query(q(Level.PATIENT)).rows
    assert values(patient, NUMBER_OF_PATIENT_RELATED_STUDIES) == [1]
    assert values(patient, NUMBER_OF_PATIENT_RELATED_INSTANCES) == [1]

    index.delete("default", other.study_uid)
    assert index.query(q(Level.PATIENT)).rows == []
    assert index.stats() == []


def test_later_instances_add_attributes_but_never_replace_them(index: IndexStore) -> None:
    study = new_uid()
    first = make(study_uid=study, AccessionNumber=None, StudyDescription="First")
    second = make(study_uid=study, AccessionNumber="ACC-9", StudyDescription="Second")
    store(index, first)
    store(index, second)
    row = by_study(index, study)
    assert values(row, "00081030") == ["First"]
    accession = key(ACCESSION_NUMBER, "SH", SingleValue("ACC-9"))
    assert uids(index, q(Level.STUDY, accession), STUDY_INSTANCE_UID) == [study]


def test_multi_valued_and_multi_group_values_are_matched(index: IndexStore) -> None:
    multi = make(AccessionNumber=["A-1", "A-2"])
    ideographic = make(
        patient_id="PID-2", PatientName={"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"}
    )
    store(index, multi, ideographic)
    accession = key(ACCESSION_NUMBER, "SH", SingleValue("A-2"))
    assert uids(index, q(Level.STUDY, accession), STUDY_INSTANCE_UID) == [multi.study_uid]
    name = key(PATIENT_NAME, "PN", Wildcard("山田*"))
    assert uids(index, q(Level.STUDY, name), STUDY_INSTANCE_UID) == [ideographic.study_uid]
    assert uids(index, q(Level.IMAGE, name), SOP_INSTANCE_UID) == [ideographic.sop_uid]


# -- matching ---------------------------------------------------------------------------------


def test_common_query_shapes(index: IndexStore) -> None:
    doe = make(patient_id="P-DOE", patient_name="Doe^John", study_date="20240110")
    roe = make(patient_id="P-ROE", patient_name="Roe^Jane", study_date="20240220", modality="MR")
    legacy = make(patient_id="P-OLD", patient_name="Dö^Ann", study_date="2024.03.01")
    store(index, doe, roe, legacy)

    def studies(*keys: MatchKey, fuzzy: bool = False) -> set[str]:
        return set(uids(index, q(Level.STUDY, *keys, fuzzy=fuzzy), STUDY_INSTANCE_UID))

    assert studies(key(PATIENT_NAME, "PN", Wildcard("DOE*"))) == {doe.study_uid}
    assert studies(key(PATIENT_NAME, "PN", SingleValue("doe^john"))) == {doe.study_uid}
    assert studies(key(PATIENT_NAME, "PN", Wildcard("d?e*"))) == {doe.study_uid}
    assert studies(key(PATIENT_NAME, "PN", SingleValue("do^ann")), fuzzy=True) == {legacy.study_uid}
    assert studies(key(PATIENT_ID, "LO", SingleValue("P-ROE"))) == {roe.study_uid}
    assert studies(key(PATIENT_ID, "LO", Wildcard("P-*E"))) == {doe.study_uid, roe.study_uid}
    assert studies(key(STUDY_DATE, "DA", Range("20240201", None))) == {
        roe.study_uid,
        legacy.study_uid,
    }
    assert studies(key(STUDY_DATE, "DA", SingleValue("20240301"))) == {legacy.study_uid}
    assert studies(key(MODALITIES_IN_STUDY, "CS", SingleValue("MR"))) == {roe.study_uid}
    assert studies(key(STUDY_INSTANCE_UID, "UI", UidList((doe.study_uid, roe.study_uid)))) == {
        doe.study_uid,
        roe.study_uid,
    }
    series_ct = key(MODALITY, "CS", SingleValue("CT"))
    assert set(uids(index, q(Level.SERIES, series_ct), SERIES_INSTANCE_UID)) == {
        doe.series_uid,
        legacy.series_uid,
    }
    in_series = key(SERIES_INSTANCE_UID, "UI", SingleValue(roe.series_uid))
    assert uids(index, q(Level.IMAGE, in_series), SOP_INSTANCE_UID) == [roe.sop_uid]


def test_name_wild_cards_without_a_literal_prefix(index: IndexStore) -> None:
    """ "*SMITH*" cannot use a prefix range; back ends may compile it to a substring search
    (PostgreSQL: LIKE over pg_trgm), which must find what the matcher finds."""
    john = make(patient_id="P-1", patient_name="Doe^John")
    ann = make(patient_id="P-2", patient_name="Dö^Ann")
    odd = make(patient_id="P-3", patient_name="O'Hara%_^Jo\\hn")
    store(index, john, ann, odd)

    def studies(pattern: str) -> set[str]:
        found = uids(index, q(Level.STUDY, key(PATIENT_NAME, "PN", Wildcard(pattern))), "0020000D")
        return set(found)

    assert studies("*OE^JOH*") == {john.study_uid}
    assert studies("*john") == {john.study_uid}
    assert studies("?Ö^ANN") == {ann.study_uid}
    assert studies("*hn*") == {john.study_uid, odd.study_uid}
    assert studies("*ara%_*") == {odd.study_uid}
    assert studies("*a%_^jo\\h*") == {odd.study_uid}
    assert studies("*ara_%*") == set()
    assert studies("*O?^J*N") == {john.study_uid}


def test_paging_is_stable_and_reports_more(index: IndexStore) -> None:
    created = [make() for _ in range(5)]
    for inst in created:
        store(index, inst)
    order = [i.study_uid for i in created]  # insertion order
    page = index.query(q(Level.STUDY, limit=2))
    assert ([values(r, STUDY_INSTANCE_UID)[0] for r in page.rows], page.more) == (order[:2], True)
    page = index.query(q(Level.STUDY, limit=2, offset=2))
    assert ([values(r, STUDY_INSTANCE_UID)[0] for r in page.rows], page.more) == (order[2:4], True)
    page = index.query(q(Level.STUDY, limit=2, offset=4))
    assert ([values(r, STUDY_INSTANCE_UID)[0] for r in page.rows], page.more) == (order[4:], False)
    page = index.query(q(Level.STUDY, limit=5))
    assert (len(page.rows), page.more) == (5, False)
    page = index.query(q(Level.STUDY, offset=3))
    assert ([values(r, STUDY_INSTANCE_UID)[0] for r in page.rows], page.more) == (order[3:], False)


def test_name_prefix_pages_are_disjoint_and_in_insertion_order(index: IndexStore) -> None:
    """A paged name prefix search (PS3.4 C.2.2.2.4) returns the studies in insertion order
    whether the index collects the matching studies and sorts them or walks every study in
    order: `offset` pages are disjoint and together the whole result (PS3.18 8.3.4.4), and
    `more` is right on each."""
    check_name_prefix_pages(index)


@pytest.mark.parametrize("index_factory", ["sqlite"], indirect=True)
@pytest.mark.parametrize("walk", [True, False])
def test_name_prefix_pages_are_the_same_walked_or_collected(
    index: IndexStore, walk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pages with SQLite's choice (`sql.query.walk_probe`) forced either way
    (PostgreSQL's planner makes that choice itself)."""
    monkeypatch.setattr("hounsfield.adapters.index.sqlite.read.walk_probe", lambda *_: walk)
    check_name_prefix_pages(index)


def check_name_prefix_pages(index: IndexStore) -> None:
    # six patients, several studies each, interleaved; the last one has three groups, two
    # of them in the "DOE" range (two name rows for one patient)
    people: list[tuple[Any, tuple[str, ...]]] = [
        ("Doe^John", ("Doe^John",)),
        ("Roe^Jane", ("Roe^Jane",)),
        ("DOERR^Max", ("DOERR^Max",)),
        ("doe^ann", ("doe^ann",)),
        ("Smith^Sue", ("Smith^Sue",)),
        (
            {"Alphabetic": "Yamada^Tarou", "Ideographic": "Doe^Ta", "Phonetic": "Doe"},
            ("Yamada^Tarou", "Doe^Ta", "Doe"),
        ),
    ]
    created = [
        (make(patient_id=f"P-{n % 6}", PatientName=people[n % 6][0]), n % 6) for n in range(25)
    ]
    for inst, _ in created:
        store(index, inst)

    def expected(prefix: str) -> list[str]:
        return [
            inst.study_uid
            for inst, who in created
            if any(group.lower().startswith(prefix.lower()) for group in people[who][1])
        ]

    for prefix in ("DOE", "doer", "S", "D", "X"):
        name = key(PATIENT_NAME, "PN", Wildcard(prefix + "*"))
        whole = uids(index, q(Level.STUDY, name), STUDY_INSTANCE_UID)
        assert whole == expected(prefix), prefix
        for size in (1, 2, 3, 5, 100):
            pages: list[str] = []
            while True:
                page = index.query(q(Level.STUDY, name, limit=size, offset=len(pages)))
                found = [values(r, STUDY_INSTANCE_UID)[0] for r in page.rows]
                assert len(found) == min(size, len(whole) - len(pages)), (prefix, size)
                pages += found
                assert page.more == (len(pages) < len(whole)), (prefix, size)
                if not page.more:
                    break
            assert pages == whole, (prefix, size)


# -- partitions -------------------------------------------------------------------------------


def test_partitions_never_leak(index: IndexStore) -> None:
    a = make(partition="a", patient_name="Alpha^A")
    b = make(
        partition="b",
        study_uid=a.study_uid,
        series_uid=a.series_uid,
        sop_uid=a.sop_uid,
        patient_name="Beta^B",
    )
    store(index, a, events=(Event("stored", "a", {"sop": a.sop_uid}),))
    assert index.begin([b]) == [NEW]  # the same UID in another partition is another instance
    assert index.begin([a]) == [DUPLICATE]
    index.commit([b], [Event("stored", "b", {"sop": b.sop_uid})])
    only_a = make(partition="a", patient_id="PID-A")
    store(index, only_a)

    for level in Level:
        for partition, name in (("a", "Alpha^A"), ("b", "Beta^B")):
            rows = index.query(q(level, partition=partition)).rows
            names = {values(r, PATIENT_NAME)[0]["Alphabetic"] for r in rows}
            assert name in names
            assert names <= {name, "Doe^Jane"}
        assert index.query(q(level, partition="c")).rows == []
    uid_b = key(STUDY_INSTANCE_UID, "UI", SingleValue(only_a.study_uid))
    assert index.query(q(Level.STUDY, uid_b, partition="b")).rows == []
    name_a = key(PATIENT_NAME, "PN", Wildcard("alpha*"))
    assert index.query(q(Level.IMAGE, name_a, partition="b")).rows == []

    assert [i.partition for i in index.instances("b", a.study_uid)] == ["b"]
    assert [i.partition for i, _ in index.metadata("b", a.study_uid)] == ["b"]
    assert index.instances("b", only_a.study_uid) == []
    assert not index.level_exists("b", Level.STUDY, only_a.study_uid)
    assert not index.level_exists("b", Level.PATIENT, "PID-A")
    assert {i.partition for i in index.all_instances("a")} == {"a"}
    assert len(list(index.all_instances())) == 3
    assert {(s.partition, s.studies, s.instances) for s in index.stats()} == {
        ("a", 2, 2),
        ("b", 1, 1),
    }

    pending_b = make(partition="b", sop_uid=new_uid())
    pending_a = make(partition="a", sop_uid=pending_b.sop_uid)
    assert index.begin([pending_a, pending_b]) == [NEW, NEW]
    index.abort("a", [pending_b.sop_uid])
    assert index.begin([pending_b]) == [IN_PROGRESS]
    assert index.begin([pending_a]) == [NEW]

    assert index.delete("b", only_a.study_uid).instances == 0
    assert index.delete("b", a.study_uid).blob_keys == [b.blob_key]
    assert index.level_exists("a", Level.IMAGE, a.sop_uid)
    assert not index.level_exists("b", Level.IMAGE, a.sop_uid)
    assert [e.partition for e in index.events_since(0, 10)] == ["a", "b"]


# -- outbox, remote AEs, statistics ---------------------------------------------------------------


def test_events_are_appended_in_commit_order(index: IndexStore) -> None:
    first, second = make(), make()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store(index, first, events=(Event("one", "default", {"n": 1}, time=when),))
    store(index, second, events=(Event("two", "default", {"n": 2}), Event("three", "default", {})))
    assert index.delete("default", new_uid(), events=(Event("nothing", "default", {}),)) == (
        index.delete("default", new_uid())
    )
    index.delete("default", first.study_uid, events=(Event("gone", "default", {"x": [1]}),))

    events = index.events_since(0, 100)
    assert [(e.type, e.data) for e in events] == [
        ("one", {"n": 1}),
        ("two", {"n": 2}),
        ("three", {}),
        ("gone", {"x": [1]}),
    ]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert events[0].time == when
    assert all(e.time is not None for e in events)
    assert [e.type for e in index.events_since(seqs[1], 1)] == ["three"]
    assert index.events_since(seqs[-1], 10) == []


def test_remote_aes(index: IndexStore) -> None:
    pacs = RemoteAE("PACS", "10.0.0.1", 104, description="main")
    assert index.put_remote_ae(pacs)
    moved = RemoteAE("PACS", "10.0.0.2", 11112, partition="a", tls=True)
    assert not index.put_remote_ae(moved)
    assert index.put_remote_ae(RemoteAE("AI", "ai.local", 4242))
    assert index.get_remote_ae("PACS") == moved
    assert [ae.aet for ae in index.list_remote_aes()] == ["AI", "PACS"]
    assert index.delete_remote_ae("AI")
    assert not index.delete_remote_ae("AI")
    assert index.get_remote_ae("AI") is None


def test_stats_count_committed_objects_and_bytes(index: IndexStore) -> None:
    study = new_uid()
    a, b = make(study_uid=study), make(study_uid=study)
    c = make(patient_id="PID-2")
    store(index, a, b, c)
    index.begin([make()])  # pending: not counted
    [stats] = index.stats()
    assert (stats.partition, stats.patients, stats.studies, stats.series, stats.instances) == (
        "default",
        2,
        2,
        3,
        3,
    )
    assert stats.bytes == a.size + b.size + c.size


def test_all_instances_pages_through_everything(index: IndexStore) -> None:
    study, series = new_uid(), new_uid()
    many = [make(study_uid=study, series_uid=series, InstanceNumber=n) for n in range(1100)]
    store(index, *many)
    assert [i.sop_uid for i in index.all_instances()] == [i.sop_uid for i in many]
    listed = [inst.sop_uid for inst, _ in index.metadata("default", study, series)]
    assert listed == [i.sop_uid for i in many]


# -- concurrency and durability ---------------------------------------------------------------


def test_concurrent_commits_lose_nothing(index: IndexStore) -> None:
    threads, rounds, per_commit = 8, 15, 3
    study = new_uid()
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                batch = [
                    make(study_uid=study, InstanceNumber=t * 1000 + r) for _ in range(per_commit)
                ]
                assert index.begin(batch) == [NEW] * per_commit
                index.commit(batch, [Event("stored", "default", {"t": t, "r": r})])
                found = key(SOP_INSTANCE_UID, "UI", SingleValue(batch[0].sop_uid))
                assert len(index.query(q(Level.IMAGE, found)).rows) == 1
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    total = threads * rounds * per_commit
    row = by_study(index, study)
    assert values(row, NUMBER_OF_STUDY_RELATED_INSTANCES) == [total]
    assert values(row, NUMBER_OF_STUDY_RELATED_SERIES) == [total]
    assert len(index.instances("default", study)) == total
    assert len(index.events_since(0, 10_000)) == threads * rounds


def test_a_failing_commit_does_not_fail_concurrent_ones(index: IndexStore) -> None:
    stored = make()
    store(index, stored)
    bad = make(sop_uid=stored.sop_uid)  # conflicts at commit
    good = [make() for _ in range(20)]
    index.begin(good)
    outcomes: dict[int, BaseException | None] = {}
    barrier = threading.Barrier(len(good) + 1)

    def commit(n: int, inst: NewInstance) -> None:
        barrier.wait()
        try:
            index.commit([inst], [])
            outcomes[n] = None
        except Exception as exc:
            outcomes[n] = exc

    workers = [threading.Thread(target=commit, args=(n, i)) for n, i in enumerate([bad, *good])]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert outcomes[0] is not None
    assert all(outcomes[n] is None for n in range(1, len(good) + 1))
    assert all(index.level_exists("default", Level.IMAGE, i.sop_uid) for i in good)
    assert values(by_study(index, stored.study_uid), NUMBER_OF_STUDY_RELATED_INSTANCES) == [1]


def test_committed_instances_are_visible_to_a_new_handle(index_factory: IndexHarness) -> None:
    index = index_factory()
    inst = make()
    store(index, inst, events=(Event("stored", "default", {}),))
    again = index_factory.reopen(index)  # the first handle is still open, as after a crash
    assert again.level_exists("default", Level.IMAGE, inst.sop_uid)
    assert [e.type for e in again.events_since(0, 10)] == ["stored"]
    assert again.begin([inst]) == [DUPLICATE]


@pytest.mark.parametrize("level", list(Level))
def test_queries_on_an_empty_index(index: IndexStore, level: Level) -> None:
    page = index.query(q(level, key(PATIENT_NAME, "PN", Wildcard("*")), limit=10))
    assert (page.rows, page.more) == ([], False)
