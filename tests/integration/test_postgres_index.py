"""PostgreSQL-specific behaviour beyond the index contract (which runs against PostgreSQL in
tests/contract): URLs and the missing driver, migrations from several replicas at once, and
commits of one new study from several replicas (issue 5)."""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hounsfield.bootstrap import open_index
from hounsfield.config import ConfigError, load_settings
from hounsfield.domain.levels import NUMBER_OF_STUDY_RELATED_INSTANCES, STUDY_INSTANCE_UID
from hounsfield.domain.model import Level
from hounsfield.domain.query import MatchKey, Query, SingleValue
from hounsfield.ports.index import Event, IndexStore, NewInstance
from tests.contract.conftest import PostgresSchemas, require_postgres
from tests.factories import make_new_instance as make
from tests.factories import new_uid


@pytest.fixture
def url() -> Iterator[str]:
    """A URL of the test server naming a fresh schema, dropped afterwards."""
    base = require_postgres()
    schema = f"hf_it_{secrets.token_hex(6)}"
    try:
        yield f"{base}?schema={schema}&pool_max=4"
    finally:
        PostgresSchemas(base).drop(schema)


def test_settings_accept_postgresql_urls(tmp_path: Path) -> None:
    for url in ("postgresql://archive@db:5432/pacs", "postgres://db/pacs?sslmode=require"):
        env = {"HOUNSFIELD_DATA_DIR": str(tmp_path), "HOUNSFIELD_INDEX_URL": url}
        assert load_settings(environ=env).index_url == url
    with pytest.raises(ConfigError, match="unsupported scheme"):
        load_settings(environ={"HOUNSFIELD_INDEX_URL": "mysql://db/pacs"})


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [m for m in sys.modules if m.startswith("hounsfield.adapters.index.postgres")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'hounsfield\[postgresql\]'"):
        open_index("postgresql://nobody@127.0.0.1:1/none")


def _study(index: IndexStore, study_uid: str) -> list[dict[str, object]]:
    key = MatchKey(STUDY_INSTANCE_UID, "UI", SingleValue(study_uid))
    return index.query(Query(Level.STUDY, keys=(key,))).rows


def test_replicas_migrate_at_once_and_share_one_index(url: str) -> None:
    """Four processes' worth of handles migrate the same empty schema concurrently (the
    advisory lock serialises them); what one stores, another finds."""
    handles: list[IndexStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait()
            handles.append(open_index(url, durable=False))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        inst = make()
        handles[0].commit([inst], [Event("stored", "default", {})])
        assert handles[3].level_exists("default", Level.IMAGE, inst.sop_uid)
        assert [e.type for e in handles[2].events_since(0, 10)] == ["stored"]
    finally:
        for handle in handles:
            handle.close()


def test_replicas_committing_one_new_study_keep_it_consistent(url: str) -> None:
    """Concurrent STOW of the same new study through several replicas (issue 5): one study,
    one patient, each series once, every instance counted exactly once, even when the same
    instance is committed by two replicas."""
    replicas = [open_index(url, durable=False) for _ in range(3)]
    study, series = new_uid(), [new_uid() for _ in range(4)]
    shared = [make(study_uid=study, series_uid=series[0], InstanceNumber=0) for _ in range(5)]
    per_replica: list[list[NewInstance]] = [
        [
            make(study_uid=study, series_uid=series[(r + n) % 4], InstanceNumber=100 * r + n)
            for n in range(24)
        ]
        for r in range(len(replicas))
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(replicas) * 2)

    def store(index: IndexStore, batch: list[NewInstance]) -> None:
        try:
            barrier.wait()
            for start in range(0, len(batch), 4):
                index.commit([*shared, *batch[start : start + 4]], [])
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=store, args=(replica, part))
        for replica, batch in zip(replicas, per_replica, strict=True)
        for part in (batch[:12], batch[12:])
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        total = len(shared) + sum(len(b) for b in per_replica)
        for index in replicas:
            [row] = _study(index, study)
            assert row[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [total]  # type: ignore[index]
        [stats] = replicas[0].stats()
        assert (stats.patients, stats.studies, stats.series, stats.instances) == (1, 1, 4, total)
        assert len(replicas[1].instances("default", study)) == total
        series_rows = replicas[2].query(Query(Level.SERIES)).rows
        assert sorted(r["00201209"]["Value"][0] for r in series_rows) == sorted(  # type: ignore[index]
            [
                sum(1 for b in per_replica for i in b if i.series_uid == s)
                + (len(shared) if s == series[0] else 0)
                for s in series
            ]
        )
    finally:
        for index in replicas:
            index.close()


def test_index_migrate_false_refuses_a_schema_behind_and_migrate_fixes_it(
    url: str, tmp_path: Path
) -> None:
    """index_migrate=false: replicas never change the schema; `hounsfield migrate` (here
    open_index with migrate=True, which the command uses) brings it up to date first."""
    with pytest.raises(ConfigError, match="hounsfield migrate"):
        open_index(url, durable=False, migrate=False)
    open_index(url, durable=False).close()
    index = open_index(url, durable=False, migrate=False)
    try:
        assert index.stats() == []
    finally:
        index.close()
    env = {"HOUNSFIELD_DATA_DIR": str(tmp_path), "HOUNSFIELD_INDEX_MIGRATE": "false"}
    assert load_settings(environ=env).index_migrate is False


def test_deletes_racing_commits_of_one_patient_keep_counts_exact(url: str) -> None:
    """Replica A keeps storing studies of one patient while replica B deletes them: a commit
    whose patient row a delete removed is retried (`Retry`), and every count left matches
    the rows left."""
    storer, deleter = open_index(url, durable=False), open_index(url, durable=False)
    studies = [new_uid() for _ in range(12)]
    errors: list[BaseException] = []
    stored = threading.Event()

    def store() -> None:
        try:
            for study in studies:
                storer.commit([make(study_uid=study, patient_id="RACE") for _ in range(3)], [])
                stored.set()
        except BaseException as exc:
            errors.append(exc)

    def delete() -> None:
        try:
            stored.wait(10)
            for _ in range(3):
                for study in studies:
                    deleter.delete("default", study)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=store), threading.Thread(target=delete)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        left = [s for s in studies if storer.level_exists("default", Level.STUDY, s)]
        stats = storer.stats()
        if not left:
            assert stats == []
            return
        [row] = stats
        assert (row.patients, row.studies, row.instances) == (1, len(left), 3 * len(left))
        [patient] = storer.query(Query(Level.PATIENT)).rows
        assert patient["00201200"]["Value"] == [len(left)]  # type: ignore[index]
        assert patient["00201204"]["Value"] == [3 * len(left)]  # type: ignore[index]
    finally:
        storer.close()
        deleter.close()
