"""SQLite-specific parts of the index: group commit, crash durability, migrations, and the
SQL helpers that the contract suite exercises only indirectly (name folding, prefix ranges)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hounsfield.adapters.index.sql.columns import fold_name
from hounsfield.adapters.index.sql.compile import (
    compile_prefilter,
    literal_prefix,
    prefix_upper_bound,
)
from hounsfield.adapters.index.sql.migrations import MigrationError, discover
from hounsfield.adapters.index.sql.query import candidate_statements, walk_probe
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.adapters.index.sqlite.connection import ReaderPool, open_connection
from hounsfield.adapters.index.sqlite.groupcommit import GroupCommitter
from hounsfield.adapters.index.sqlite.migrate import PACKAGE, schema_version, statements
from hounsfield.domain.levels import MODALITIES_IN_STUDY, MODALITY, PATIENT_NAME
from hounsfield.domain.model import Level
from hounsfield.domain.query import MatchKey, Query, Range, SingleValue, Wildcard
from tests.factories import make_new_instance

REPO = Path(__file__).resolve().parents[2]
Work = Callable[[sqlite3.Connection], None]


# -- group commit ---------------------------------------------------------------------------


@pytest.fixture
def table(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_connection(str(tmp_path / "g.db"), durable=False, reader=False)
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    yield conn
    conn.close()


def _contents(conn: sqlite3.Connection) -> set[int]:
    return {int(r[0]) for r in conn.execute("SELECT x FROM t")}


def _run_behind_a_busy_leader(
    committer: GroupCommitter, works: list[Work]
) -> dict[int, BaseException | None]:
    """Hold the writer with one piece of work, queue `works` from threads, then release."""
    gate, started = threading.Event(), threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        started.set()
        assert gate.wait(10)
        conn.execute("INSERT INTO t VALUES (0)")

    leader = threading.Thread(target=committer.run, args=(blocker,))
    leader.start()
    assert started.wait(10)
    outcomes: dict[int, BaseException | None] = {}

    def submit(n: int, work: Work) -> None:
        try:
            committer.run(work)
            outcomes[n] = None
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=submit, args=(n, w)) for n, w in enumerate(works)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(committer._queue) < len(works):
        assert time.monotonic() < deadline
        time.sleep(0.001)
    gate.set()
    for t in [leader, *threads]:
        t.join()
    return outcomes


def test_waiting_work_shares_one_transaction_and_keeps_its_own_errors(
    table: sqlite3.Connection,
) -> None:
    committer = GroupCommitter(table)

    def insert(n: int) -> Work:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            if n == 3:
                raise ValueError("bad batch")

        return work

    outcomes = _run_behind_a_busy_leader(committer, [insert(n) for n in range(1, 6)])
    assert isinstance(outcomes[2], ValueError)
    assert sorted(n for n, e in outcomes.items() if e is None) == [0, 1, 3, 4]
    assert _contents(table) == {0, 1, 2, 4, 5}
    assert (committer.transactions, committer.pieces) == (2, 6)


def test_a_broken_shared_transaction_is_retried_piece_by_piece(table: sqlite3.Connection) -> None:
    committer = GroupCommitter(table)

    def insert(n: int) -> Work:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            if n == 2:
                conn.execute("ROLLBACK")  # destroys the shared transaction

        return work

    outcomes = _run_behind_a_busy_leader(committer, [insert(n) for n in range(1, 4)])
    assert outcomes[0] is None and outcomes[2] is None
    assert outcomes[1] is not None
    assert _contents(table) == {0, 1, 3}


# -- durability and connections ---------------------------------------------------------------


def test_a_commit_survives_a_crash_of_the_process(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    script = textwrap.dedent(
        f"""
        import os
        from hounsfield.adapters.index.sqlite import SqliteIndex
        from tests.factories import make_new_instance
        index = SqliteIndex({str(path)!r}, durable=True)
        index.migrate()
        inst = make_new_instance(sop_uid="1.2.3.4.5")
        index.begin([inst])
        index.commit([inst], [])
        os._exit(0)  # no close, no checkpoint: the WAL holds the commit
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
    assert (tmp_path / "crash.db-wal").exists()
    index = SqliteIndex(path)
    try:
        index.migrate()
        assert index.level_exists("default", Level.IMAGE, "1.2.3.4.5")
    finally:
        index.close()


def test_readers_of_finished_threads_are_closed(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "r.db", durable=False)
    index.migrate()
    index.close()
    pool = ReaderPool(str(tmp_path / "r.db"), durable=False)
    try:
        worker = threading.Thread(target=pool.get)
        worker.start()
        worker.join()
        pool.get()
        assert len(pool._owners) == 1
    finally:
        pool.close()


def test_concurrent_durable_commits_are_grouped(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "d.db", durable=True)
    index.migrate()
    try:
        batches = [[make_new_instance()] for _ in range(64)]
        threads = [threading.Thread(target=index.commit, args=(b, [])) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        transactions, pieces = index.group_stats
        assert pieces == 64  # migrations and close run outside the group
        assert 1 <= transactions <= pieces
        assert len(list(index.all_instances())) == 64
    finally:
        index.close()


# -- migrations -------------------------------------------------------------------------------


def test_migrations_are_idempotent_and_immutable(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    index = SqliteIndex(path, durable=False)
    index.migrate()
    index.migrate()
    index.close()
    conn = sqlite3.connect(path)
    try:
        assert schema_version(conn) == len(discover(PACKAGE)) >= 2
        conn.execute("UPDATE schema_version SET checksum = 'edited'")
        conn.commit()
    finally:
        conn.close()
    index = SqliteIndex(path, durable=False)
    try:
        with pytest.raises(MigrationError, match="edited"):
            index.migrate()
    finally:
        index.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    index = SqliteIndex(path, durable=False)
    index.migrate()
    index.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', 'x', 'now')")
    conn.commit()
    conn.close()
    index = SqliteIndex(path, durable=False)
    try:
        with pytest.raises(MigrationError, match="newer"):
            index.migrate()
    finally:
        index.close()


def test_statements_split_like_sqlite() -> None:
    script = (
        "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n"
        "INSERT INTO a VALUES ('b;c');\n-- end\n"
    )
    assert statements(script) == [
        "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "INSERT INTO a VALUES ('b;c');",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE b (x)")


# -- SQL helpers ------------------------------------------------------------------------------


def test_fold_name_equates_whatever_re_ignorecase_equates() -> None:
    """Every pair of characters that `re.IGNORECASE` matches folds to the same string, so a
    wild card's literal prefix folds to a prefix of every name it matches (sql.columns)."""
    tolower = getattr(__import__("_sre"), "unicode_tolower", None)
    if tolower is None:
        pytest.skip("this Python's re engine does not expose its case table")
    classes: dict[int, list[str]] = {}
    for cp in range(sys.maxunicode + 1):
        if not 0xD800 <= cp <= 0xDFFF:
            classes.setdefault(tolower(cp), []).append(chr(cp))
    extra = ["iıIİ", "sſS", "kKK", "µμΜ", "\u0345ιΙι", "βϐΒ", "εϵΕ", "θϑϴΘ", "κϰΚ", "πϖΠ", "ρϱΡ"]
    groups = [members for members in classes.values() if len(members) > 1] + [
        list(e) for e in extra
    ]
    for members in groups:
        first = members[0]
        for other in members[1:]:
            if re.fullmatch(re.escape(first), other, re.IGNORECASE):
                assert fold_name(first) == fold_name(other), (first, other)


@given(st.text(), st.text())
def test_fold_name_is_character_by_character(a: str, b: str) -> None:
    assert fold_name(a + b) == fold_name(a) + fold_name(b)
    assert not any(unicodedata.combining(c) for c in fold_name(a))


def test_prefix_bounds() -> None:
    assert prefix_upper_bound("doe") == "dof"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("\ud7ff") == "\ue000"
    assert literal_prefix("DOE^J*N?") == "DOE^J"
    assert literal_prefix("*DOE") == ""


@given(st.text(min_size=1), st.text())
def test_every_extension_of_a_prefix_is_inside_its_range(prefix: str, rest: str) -> None:
    upper = prefix_upper_bound(prefix)
    value = (prefix + rest).encode("utf-8", "surrogatepass")
    assert prefix.encode("utf-8", "surrogatepass") <= value
    if upper is not None:
        assert value < upper.encode("utf-8", "surrogatepass")


def test_what_compiles_to_sql() -> None:
    name = MatchKey(PATIENT_NAME, "PN", Wildcard("Doe*"))
    series_key = MatchKey(MODALITY, "CS", SingleValue("CT"))
    modalities = MatchKey(MODALITIES_IN_STUDY, "CS", SingleValue("CT"))
    date = MatchKey("00080020", "DA", Range("20240101", None))
    bad_date = MatchKey("00080020", "DA", Range("2024", None))

    compiled = compile_prefilter(Query(Level.STUDY, keys=(name, series_key, modalities, date)))
    assert len(compiled.clauses) == 2  # Modality is a series attribute: matcher only
    assert compiled.joins == [
        "JOIN study_modalities m1 ON m1.study_pk = s.pk AND m1.partition = ? AND m1.modality = ?"
    ]
    assert (compiled.order, compiled.tables) == ("m1.study_pk", {"s"})
    assert "doe" in compiled.params and "dof" in compiled.params
    assert compiled.irregular == {"s"}
    fuzzy = compile_prefilter(Query(Level.STUDY, keys=(name,), fuzzy=True))
    assert fuzzy.clauses == []
    assert compile_prefilter(Query(Level.STUDY, keys=(bad_date,))).clauses == []
    at_series = compile_prefilter(Query(Level.SERIES, keys=(series_key, modalities)))
    assert (at_series.clauses, at_series.joins) == (["se.modality = ?"], [])


def test_a_paged_name_search_walks_the_studies_only_when_the_name_is_common(
    tmp_path: Path,
) -> None:
    """Study keys in order (stable paging) from a name prefix: collecting and sorting every
    match costs the whole result, walking the studies in key order costs the page over the
    density; `walk_probe` picks the cheaper from the table sizes and a count of the names
    that stops at the threshold, and the fixed statistics of the migrations make SQLite run
    each form as meant (sizes of bench.index_scale's archive: 36,732 patients, 100,000
    studies)."""
    name = MatchKey(PATIENT_NAME, "PN", Wildcard("B*"))
    page = Query(Level.STUDY, keys=(name,), limit=100)
    limits: list[object] = []

    def decide(query: Query, matching: int, owners: int | None, studies: int | None) -> bool:
        def first(sql: str, params: list[object]) -> tuple[object, ...]:
            if "max(pk)" in sql:
                return (owners, studies)
            limits.append(params[-1])
            return (min(matching, int(str(params[-1]))),)

        return walk_probe(query, first)

    assert decide(page, 2_300, 36_732, 100_000)  # "B*": 6% of the studies
    assert limits == [826]  # 36,732 * sqrt(101 / (2 * 100,000)): counting stops there
    assert not decide(page, 460, 36_732, 100_000)  # "SMITH*": 1.25%
    assert not decide(page, 50, 36_732, 100_000)
    deep = Query(Level.STUDY, keys=(name,), limit=100, offset=6_000)
    assert not decide(deep, 2_300, 36_732, 100_000)  # 6,101 keys: collecting is cheaper
    assert not decide(page, 0, None, None)  # an empty index

    def unreachable(sql: str, params: list[object]) -> tuple[object, ...]:
        raise AssertionError(sql)

    date = MatchKey("00080020", "DA", Range("20240101", None))
    for no_choice in (
        Query(Level.STUDY, keys=(name,)),  # unpaged: every match is read anyway
        Query(Level.SERIES, keys=(name,), limit=100),
        Query(Level.STUDY, keys=(name, date), limit=100),
        Query(Level.STUDY, keys=(name,), limit=100, fuzzy=True),
    ):
        assert not walk_probe(no_choice, unreachable), no_choice

    index = SqliteIndex(tmp_path / "index.db", durable=False)
    try:
        index.migrate()
        conn = index._readers.get()
        assert not walk_probe(page, lambda sql, params: conn.execute(sql, params).fetchone())

        def plan(walk: bool) -> str:
            sql, params = candidate_statements(page, walk=walk)[0]
            return " ; ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))

        assert "studies_patient" in plan(False) and "TEMP B-TREE" in plan(False)
        assert "COVERING INDEX studies_in_order" in plan(True) and "TEMP B-TREE" not in plan(True)
    finally:
        index.close()


def test_pending_only_groups_commit_without_syncing(tmp_path: Path) -> None:
    """begin() need not be durable (ADR 0002); commit() must be, and syncs what came before."""
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (v INTEGER)")
    committer = GroupCommitter(conn, durable=True)

    def synchronous() -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    committer.run(lambda c: c.execute("INSERT INTO t VALUES (1)"), durable=False)
    assert synchronous() == 1  # NORMAL
    committer.run(lambda c: c.execute("INSERT INTO t VALUES (2)"))
    assert synchronous() == 2  # FULL
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    conn.close()
