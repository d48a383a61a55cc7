"""The read side shared by the SQL index adapters: candidate statements, row assembly and
confirmation by the reference matcher (ADR 0005).

A query runs the compiled pre-filter (`sql.compile`) ordered by the level's primary key, plus
one stream per table whose irregular rows must be reconsidered (`sql.columns`); the streams
are merged in key order and every candidate row is kept only if `domain.matching.matches`
accepts it. Results are therefore exactly the reference matcher's (PS3.4 C.2.2.2) whatever
the SQL does, and paging is stable: rows come in primary key order, which never changes.

The statements are written once with "?" placeholders and rendered for a driver by
`render` (the SQL text here has no literal "?" or "%"), so SQLite and PostgreSQL run the same
SQL and cannot drift apart in what they consider a candidate.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from hounsfield.adapters.index.sql.compile import SQLITE, Dialect, compile_prefilter
from hounsfield.adapters.index.sql.rows import (
    instance_row,
    loads,
    patient_row,
    series_row,
    study_row,
)
from hounsfield.domain.matching import matches
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.query import Query
from hounsfield.ports.index import QueryPage

Row = tuple[Any, ...]

JOINS: dict[Level, str] = {
    Level.PATIENT: "patients p",
    Level.STUDY: "studies s JOIN patients p ON p.pk = s.patient_pk",
    Level.SERIES: (
        "series se JOIN studies s ON s.pk = se.study_pk JOIN patients p ON p.pk = s.patient_pk"
    ),
    Level.IMAGE: (
        "instances i JOIN series se ON se.pk = i.series_pk"
        " JOIN studies s ON s.pk = se.study_pk JOIN patients p ON p.pk = s.patient_pk"
    ),
}
COLUMNS: dict[Level, str] = {
    Level.PATIENT: "p.pk, p.attrs, p.num_studies, p.num_series, p.num_instances",
    Level.STUDY: (
        "s.pk, p.pk, p.attrs, s.attrs, s.study_uid, s.num_series, s.num_instances,"
        " s.modalities, s.sop_classes"
    ),
    Level.SERIES: (
        "se.pk, p.pk, p.attrs, s.pk, s.attrs, se.attrs, s.study_uid, se.series_uid,"
        " se.num_instances"
    ),
    Level.IMAGE: (
        "i.pk, p.pk, p.attrs, s.pk, s.attrs, se.pk, se.attrs, i.attrs, s.study_uid,"
        " se.series_uid, i.sop_uid, i.sop_class_uid"
    ),
}
BASE: dict[Level, str] = {
    Level.PATIENT: "p",
    Level.STUDY: "s",
    Level.SERIES: "se",
    Level.IMAGE: "i",
}
#: Rows fetched per round trip once candidates are known (and never more than needed + 1).
FETCH = 128

_TABLES = {"p": "patients", "s": "studies", "se": "series", "i": "instances"}
#: How a level's table reaches a parent: (base, parent) -> join; patients through studies.
_PARENT_JOINS = {
    ("i", "se"): "JOIN series se ON se.pk = i.series_pk",
    ("i", "s"): "JOIN studies s ON s.pk = i.study_pk",
    ("se", "s"): "JOIN studies s ON s.pk = se.study_pk",
    ("i", "p"): "JOIN patients p ON p.pk = s.patient_pk",
    ("se", "p"): "JOIN patients p ON p.pk = s.patient_pk",
    ("s", "p"): "JOIN patients p ON p.pk = s.patient_pk",
}


def render(sql: str, dialect: Dialect) -> str:
    """`sql` written with "?" placeholders, in the dialect's placeholder style."""
    if dialect.param == "?":
        return sql
    assert "%" not in sql, "literal % in shared SQL"
    return sql.replace("?", dialect.param)


class Decoder:
    """Builds row JSON, decoding each parent's attributes once per query (an instance query
    returns many rows of the same series). Rows share parent elements: treat as read-only."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], DicomJson] = {}

    def attrs(self, alias: str, pk: int, blob: bytes) -> DicomJson:
        key = (alias, pk)
        found = self._cache.get(key)
        if found is None:
            found = loads(blob)
            self._cache[key] = found
        return found

    def row(self, level: Level, r: Row) -> DicomJson:
        if level is Level.PATIENT:
            return patient_row(loads(r[1]), r[2], r[3], r[4])
        if level is Level.STUDY:
            patient = self.attrs("p", r[1], r[2])
            return study_row(patient, loads(r[3]), r[4], r[5], r[6], loads(r[7]), loads(r[8]))
        if level is Level.SERIES:
            patient, study = self.attrs("p", r[1], r[2]), self.attrs("s", r[3], r[4])
            return series_row(patient, study, loads(r[5]), r[6], r[7], r[8])
        patient, study = self.attrs("p", r[1], r[2]), self.attrs("s", r[3], r[4])
        series = self.attrs("se", r[5], r[6])
        return instance_row(
            patient, study, series, loads(r[7] or b"{}"), (r[8], r[9], r[10], r[11])
        )


def _candidate_from(
    level: Level, tables: set[str], partition: str
) -> tuple[str, list[str], list[object]]:
    """FROM clause joining only the tables conditions refer to, and the partition scope.

    Every joined table is scoped to the partition (DESIGN.md key idea 6: no statement can
    see another partition's rows), which also keeps indexes that start with it usable.
    """
    base = BASE[level]
    needed = set(tables)
    if "p" in needed and base != "p":
        needed.add("s")  # patients are reached through studies
    needed.discard(base)
    parts = [f"{_TABLES[base]} {base}"]
    parts += [_PARENT_JOINS[(base, alias)] for alias in ("se", "s", "p") if alias in needed]
    joined = [base, *(alias for alias in ("se", "s", "p") if alias in needed)]
    scope = [f"{alias}.partition = ?" for alias in joined]
    params: list[object] = [partition] * len(scope)
    if level is Level.IMAGE:
        scope.append("i.state = 'committed'")
    return " ".join(parts), scope, params


def merge_unique(streams: Sequence[Iterator[tuple[int]]]) -> Iterator[int]:
    """Merge key-ordered streams of primary keys, dropping keys already seen."""
    last: int | None = None
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    for (pk,) in merged:
        if pk != last:
            last = pk
            yield pk


def candidate_statements(
    query: Query, dialect: Dialect = SQLITE, *, keyset: bool = False, walk: bool = False
) -> list[tuple[str, list[object]]]:
    """The SQL of the candidate streams: the compiled pre-filter, then one stream per table
    whose irregular rows must be reconsidered. Each yields primary keys in order, so sorting
    (when an index other than the primary key drives the search) moves keys, not documents.

    With `keyset`, each statement ends with `AND key > ? ORDER BY key LIMIT ?` and the caller
    appends those two parameters: the stream is read in pages (`keyset_stream`), which lets a
    client-side cursor (PostgreSQL) stop early and lets the planner choose a fast-start plan.
    With `walk` (see `walk_probe`), a name condition that is the only one becomes a filter on
    the level read in key order instead of driving the search.
    """
    base = BASE[query.level]
    prefilter = compile_prefilter(query, Dialect("?", dialect.contains))  # rendered below
    if walk and prefilter.names is not None:
        prefilter.clauses[0] = prefilter.names.clause(walk=True)
    joins, scope, scope_params = _candidate_from(
        query.level, set(prefilter.tables), query.partition
    )
    order = prefilter.order or f"{base}.pk"
    where = " AND ".join(scope + prefilter.clauses)
    tail = f" AND {order} > ? ORDER BY {order} LIMIT ?" if keyset else f" ORDER BY {order}"
    statements = [
        (
            f"SELECT {order} FROM {joins} {' '.join(prefilter.joins)}"  # noqa: S608
            f" WHERE {where}{tail}",
            [*prefilter.join_params, *scope_params, *prefilter.params],
        )
    ]
    for alias in sorted(prefilter.irregular):
        joins, scope, scope_params = _candidate_from(query.level, {alias}, query.partition)
        tail = f" ORDER BY {base}.pk"
        if keyset:
            tail = f" AND {base}.pk > ?{tail} LIMIT ?"
        statements.append(
            (
                f"SELECT {base}.pk FROM {joins} WHERE {' AND '.join(scope)}"  # noqa: S608
                f" AND {alias}.irregular = 1{tail}",
                scope_params,
            )
        )
    return [(render(sql, dialect), params) for sql, params in statements]


#: What collecting a matching study key costs (an index lookup per patient, a sort) in keys
#: walked in order (a covering index read in sequence, a lookup in the matching set): 0.28
#: against 0.11 us in SQLite at 1M instances (docs/perf.md).
WALK_ADVANTAGE = 2


def walk_probe(query: Query, first: Callable[[str, list[object]], Sequence[Any]]) -> bool:
    """Whether a paged study search whose only condition is a name (`Prefilter.names`)
    should walk the studies in key order (`candidate_statements(walk=True)`); `first` runs
    a statement and returns its first row.

    Results come in primary key order (stable `offset` paging, PS3.18 8.3.4.4), so such a
    search either collects every matching study and sorts the keys, which costs what the
    whole result costs ("DOE*" matches thousands of studies for a page of 100), or walks
    the studies in order and stops after the page, which costs the page over the density.
    With `m` of `owners` matching, about a fraction `d = m / owners` of the studies match:
    the walk reads `wanted / d` keys, collecting `d * studies` keys, each WALK_ADVANTAGE
    times dearer, so walking pays once `m >= owners * sqrt(wanted / (WALK_ADVANTAGE *
    studies))`. Two cheap statements tell: the largest keys (table sizes, from the ends of
    the primary keys) and a count of the matching names that stops at that threshold.
    Largest keys count rows ever made in every partition, so `d` can only be underestimated,
    which favours collecting: the plan that never reads more than the result.

    For SQLite, whose planner has no statistics on ranges of names (ADR 0005). PostgreSQL's
    planner makes the same choice from its histograms, with a LIMIT-aware cost (ADR 0008).
    """
    if query.level is not Level.STUDY or query.limit is None:
        return False
    names = compile_prefilter(query).names
    if names is None:
        return False
    owners, studies = (
        int(largest or 0)
        for largest in first(
            f"SELECT (SELECT max(pk) FROM {names.table}), (SELECT max(pk) FROM studies)",  # noqa: S608
            [],
        )
    )
    if not owners or not studies:
        return False
    wanted = query.offset + query.limit + 1
    enough = math.ceil(owners * math.sqrt(wanted / (WALK_ADVANTAGE * studies)))
    if enough > owners:
        return False
    sql = f"SELECT count(*) FROM ({names.subquery} LIMIT ?) n"  # noqa: S608
    return int(first(sql, [*names.params, enough])[0]) >= enough


def keyset_stream(
    run: Callable[[str, list[object]], Iterable[tuple[int]]],
    sql: str,
    params: list[object],
    first: int,
    most: int = 4096,
) -> Iterator[tuple[int]]:
    """Read a keyset statement (`candidate_statements(keyset=True)`) page by page, each page
    twice the last (up to `most`), so a first page costs one small query."""
    after, size = 0, first
    while True:
        page = list(run(sql, [*params, after, size]))
        yield from page
        if len(page) < size:
            return
        after = int(page[-1][0])
        size = min(size * 2, most)


def fetch_statement(level: Level, count: int, dialect: Dialect = SQLITE) -> str:
    """The rows of `count` candidate keys of one partition (parameters: partition, keys)."""
    base = BASE[level]
    marks = ", ".join("?" * count)
    return render(
        f"SELECT {COLUMNS[level]} FROM {JOINS[level]}"  # noqa: S608
        f" WHERE {base}.partition = ? AND {base}.pk IN ({marks})",
        dialect,
    )


def confirm(
    query: Query,
    candidates: Iterator[int],
    fetch: Callable[[list[int]], Iterable[Row]],
) -> QueryPage:
    """Fetch candidate rows in small batches, keep those the reference matcher accepts and
    apply `offset` and `limit` after confirmation (ADR 0005)."""
    decoder = Decoder()
    wanted = None if query.limit is None else query.offset + query.limit
    rows: list[DicomJson] = []
    seen = 0
    while True:
        size = FETCH if wanted is None else max(1, min(FETCH, wanted - seen + 1))
        pks = list(itertools.islice(candidates, size))
        if not pks:
            return QueryPage(rows=rows, more=False)
        found = {int(r[0]): r for r in fetch(pks)}
        for raw in (found[pk] for pk in pks if pk in found):
            row = decoder.row(query.level, raw)
            if not matches(query.keys, row, fuzzy=query.fuzzy):
                continue
            if wanted is not None and seen >= wanted:
                return QueryPage(rows=rows, more=True)
            if seen >= query.offset:
                rows.append(row)
            seen += 1
