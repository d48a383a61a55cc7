"""Compile the query AST (`domain.query`) into SQL conditions on the indexed columns.

The conditions are a pre-filter: they may keep rows the reference matcher rejects, never the
reverse, because every candidate is confirmed with `domain.matching.matches` afterwards
(DESIGN.md key idea 2). A key is compiled only when its SQL form is implied by the matcher's
rule for it (PS3.4 C.2.2.2); anything else (sequences, times, numbers, fuzzy names, keys on
attributes without a column) is left to the matcher alone.

The SQL is portable between SQLite and PostgreSQL: comparisons are plain `=`, `IN` and range
conditions, so wild cards with a literal prefix ("DOE*") become index range scans
(`fold >= 'doe' AND fold < 'dof'`). They rely on binary (code point) ordering of text, which
SQLite's BINARY collation gives; PostgreSQL columns must use COLLATE "C".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hounsfield.adapters.index.sql.columns import (
    COLUMNS_BY_TAG,
    NAME_TAGS,
    Alias,
    Column,
    fold_name,
    pn_normal,
)
from hounsfield.domain.keyvalues import base_vr, is_all_stars, strip_padding
from hounsfield.domain.levels import MODALITIES_IN_STUDY
from hounsfield.domain.model import Level
from hounsfield.domain.query import (
    DateTimeRange,
    Matcher,
    MatchKey,
    Query,
    Range,
    SingleValue,
    UidList,
    Wildcard,
)
from hounsfield.domain.temporal import parse_da

#: Tables joined at each level, by alias (p: patients, s: studies, se: series, i: instances).
LEVEL_ALIASES: dict[Level, tuple[Alias, ...]] = {
    Level.PATIENT: ("p",),
    Level.STUDY: ("p", "s"),
    Level.SERIES: ("p", "s", "se"),
    Level.IMAGE: ("p", "s", "se", "i"),
}

#: More values than this in a UID list are left to the matcher rather than bound one by one.
MAX_IN_LIST = 500
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between back ends here: the parameter placeholder, and whether a name
    wild card without a literal prefix ("*SMITH*") should become `fold LIKE '%smith%'`
    (worth it where a trigram index serves LIKE: PostgreSQL with pg_trgm)."""

    param: str = "?"
    contains: bool = False


SQLITE = Dialect("?")


@dataclass(frozen=True, slots=True)
class NameSet:
    """A name condition as a set of owner keys: `owner IN (subquery)`.

    `owner` is the key the level row holds (`s.patient_pk`, `s.pk` or `p.pk`), `table` the
    owner table, `subquery` its keys whose names match (parameters `params`). The candidate
    statement either drives from it (each owner's rows, then a sort by key) or walks the level
    in key order and tests each row against it (`clause(walk=True)`): see `sql.query`.
    """

    owner: str
    table: str
    subquery: str
    params: tuple[object, ...]

    def clause(self, *, walk: bool = False) -> str:
        """The condition; with `walk`, written so that it cannot drive the statement.

        Wrapped in `IS TRUE` (the same truth value: the owner key is never NULL), the IN is
        no longer a conjunct the planner may turn into an index lookup (SQLite) or a
        semi-join (PostgreSQL): it stays a filter on rows read in key order, with the
        subquery's keys computed once (SQLite's list subquery, PostgreSQL's hashed SubPlan).
        """
        condition = f"{self.owner} IN ({self.subquery})"
        return f"({condition}) IS TRUE" if walk else condition


@dataclass(slots=True)
class Prefilter:
    """SQL conditions (ANDed) with their parameters.

    `tables` are the level tables the conditions refer to (the caller joins only those),
    `joins` extra joined tables (whose parameters come first, in `join_params`), `order` the
    expression equal to the level's primary key to sort by (a joined index may deliver it in
    order), and `irregular` the tables whose irregular rows (multi-valued indexed attributes,
    see `columns`) must be added back to the candidates. `names` is the name condition when
    it is the only one (`clauses[0]`), which the caller may rewrite as a walk (`NameSet`).
    """

    clauses: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)
    tables: set[Alias] = field(default_factory=set)
    joins: list[str] = field(default_factory=list)
    join_params: list[object] = field(default_factory=list)
    order: str | None = None
    irregular: set[Alias] = field(default_factory=set)
    names: NameSet | None = None


def literal_prefix(pattern: str) -> str:
    """The characters of a wild card pattern before its first "*" or "?" (C.2.2.2.4)."""
    for at, char in enumerate(pattern):
        if char in "*?":
            return pattern[:at]
    return pattern


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix`, in code point
    order; None when there is none (a prefix of only U+10FFFF)."""
    chars = list(prefix)
    while chars:
        following = ord(chars.pop()) + 1
        if following in _SURROGATES:
            following = _SURROGATES.stop
        if following <= _MAX_CODE_POINT:
            return "".join(chars) + chr(following)
    return None


def compile_prefilter(query: Query, dialect: Dialect = SQLITE) -> Prefilter:
    """The pre-filter of a query at its level; keys on tables the level does not join (for
    example a series attribute in a study query) are left to the matcher."""
    compiler = _Compiler(query, dialect)
    for key in query.keys:
        compiler.key(key)
    out = compiler.out
    if compiler.name_sets != 1 or len(out.clauses) != 1 or out.joins or out.irregular:
        out.names = None
    return out


class _Compiler:
    def __init__(self, query: Query, dialect: Dialect) -> None:
        self.query = query
        self.p = dialect.param
        self.contains = dialect.contains
        self.aliases = LEVEL_ALIASES[query.level]
        self.out = Prefilter()
        self.name_sets = 0

    def _add(self, table: Alias, clause: str, *params: object) -> None:
        self.out.tables.add(table)
        self.out.clauses.append(clause)
        self.out.params.extend(params)

    def _in(self, count: int) -> str:
        return "IN (" + ", ".join([self.p] * count) + ")"

    def _prefix(self, expr: str, prefix: str) -> tuple[str, list[object]] | None:
        if not prefix:
            return None
        upper = prefix_upper_bound(prefix)
        if upper is None:
            return f"{expr} >= {self.p}", [prefix]
        return f"{expr} >= {self.p} AND {expr} < {self.p}", [prefix, upper]

    def _substrings(self, expr: str, pattern: str) -> tuple[str, list[object]] | None:
        """`expr LIKE '%a%b%'` for the folded literal runs of a wild card pattern, when one
        is long enough for a trigram index (three characters). Implied by the matcher's rule:
        a group that matches contains every literal run case-insensitively, in order, and
        `fold_name` folds character by character, so the folded runs are substrings of the
        folded group in the same order ("?" and the ends become "%": a superset)."""
        runs = [fold_name(run) for run in re.split(r"[*?]", pattern) if run]
        if not runs or max(len(run) for run in runs) < 3:
            return None
        escaped = [re.sub(r"([\\%_])", r"\\\1", run) for run in runs]
        return f"{expr} LIKE {self.p}", ["%" + "%".join(escaped) + "%"]

    def key(self, key: MatchKey) -> None:
        matcher = key.matcher
        if isinstance(matcher, DateTimeRange):
            matcher = matcher.date  # the combined range lies within its date range
        if not isinstance(matcher, SingleValue | Wildcard | UidList | Range):
            return  # universal and sequence keys do not narrow the rows
        if isinstance(matcher, Wildcard) and is_all_stars(matcher.pattern):
            return
        vr = base_vr(key.vr)
        if key.tag == MODALITIES_IN_STUDY and self.query.level is Level.STUDY and vr == "CS":
            self._modalities(matcher)
            return
        for alias in self.aliases:
            if key.tag in NAME_TAGS.get(alias, ()) and vr == "PN":
                if not self.query.fuzzy:  # fuzzy matching splits words: not a range
                    self._name(alias, key.tag, matcher)
                return
        column = COLUMNS_BY_TAG.get(key.tag)
        if column is None or column.table not in self.aliases or column.vr != vr:
            return
        if column.kind in ("uid", "text"):
            if self._text(column, matcher) and column.kind == "text":
                self.out.irregular.add(column.table)
        elif column.kind == "date" and self._date(column, matcher):
            self.out.irregular.add(column.table)

    def _values_condition(
        self, expr: str, vr: str, matcher: Matcher
    ) -> tuple[str, list[object]] | None:
        """Equality, list or prefix condition of a string matcher on an exact-text column."""
        if isinstance(matcher, SingleValue):
            return f"{expr} = {self.p}", [strip_padding(vr, matcher.value)]
        if isinstance(matcher, UidList):
            if not matcher.uids or len(matcher.uids) > MAX_IN_LIST:
                return None
            values = [strip_padding(vr, uid) for uid in matcher.uids]
            return f"{expr} {self._in(len(values))}", list(values)
        if isinstance(matcher, Wildcard):
            return self._prefix(expr, literal_prefix(strip_padding(vr, matcher.pattern)))
        return None

    def _text(self, column: Column, matcher: Matcher) -> bool:
        condition = self._values_condition(f"{column.table}.{column.name}", column.vr, matcher)
        if condition is None:
            return False
        self._add(column.table, condition[0], *condition[1])
        return True

    def _date(self, column: Column, matcher: Matcher) -> bool:
        """Range matching of a DA (C.2.2.2.5); a single value is the range from itself to
        itself. Invalid bounds are left to the matcher, which rejects them."""
        expr = f"{column.table}.{column.name}"
        if isinstance(matcher, SingleValue):
            lower: str | None = matcher.value.strip()
            upper = lower
        elif isinstance(matcher, Range):
            lower = matcher.lower.strip() if matcher.lower is not None else None
            upper = matcher.upper.strip() if matcher.upper is not None else None
        else:
            return False
        if any(b is not None and parse_da(b) is None for b in (lower, upper)):
            return False
        if lower is not None and lower == upper:
            self._add(column.table, f"{expr} = {self.p}", lower)
            return True
        if lower is None and upper is None:
            self._add(column.table, f"{expr} IS NOT NULL")
            return True
        if lower is not None:
            self._add(column.table, f"{expr} >= {self.p}", lower)
        if upper is not None:
            self._add(column.table, f"{expr} <= {self.p}", upper)
        return True

    def _modalities(self, matcher: Matcher) -> None:
        """ModalitiesInStudy (PS3.4 C.6.1.1.3.2): a study matches when one of its series'
        modalities does; the study_modalities table holds exactly the computed values.

        A join rather than `IN (subquery)`: its index (partition, modality, study_pk) yields
        studies in key order, so the first page is read without collecting every CT study.
        """
        alias = f"m{len(self.out.joins) + 1}"
        condition = self._values_condition(f"{alias}.modality", "CS", matcher)
        if condition is None:
            return
        self.out.joins.append(
            f"JOIN study_modalities {alias} ON {alias}.study_pk = s.pk"
            f" AND {alias}.partition = {self.p} AND {condition[0]}"
        )
        self.out.join_params.extend([self.query.partition, *condition[1]])
        self.out.tables.add("s")
        if self.out.order is None:
            self.out.order = f"{alias}.study_pk"

    def _name(self, alias: Alias, tag: str, matcher: Matcher) -> None:
        """PN single value and wild card matching (C.2.2.2.1, C.2.2.2.4): case-insensitive,
        against any component group, so a name table row per group and a folded form."""
        condition: tuple[str, list[object]] | None
        if isinstance(matcher, SingleValue | UidList):
            values = [matcher.value] if isinstance(matcher, SingleValue) else matcher.uids
            folds = [fold_name(w) for w in (_pn_key_group(v) for v in values) if w]
            if not folds or len(folds) > MAX_IN_LIST:
                return
            condition = f"fold {self._in(len(folds))}", list(folds)
        elif isinstance(matcher, Wildcard):
            group = _pn_key_group(matcher.pattern)
            condition = self._prefix("fold", fold_name(literal_prefix(group)))
            if condition is None and self.contains:
                condition = self._substrings("fold", group)
        else:
            return
        if condition is None:
            return
        owner_table: Alias = "p" if self.query.level is Level.PATIENT else "s"
        if alias == "p":
            owner, table, key_column = (
                ("p.pk" if owner_table == "p" else "s.patient_pk"),
                "patient_names",
                "patient_pk",
            )
        else:
            owner, table, key_column = "s.pk", "study_names", "study_pk"
        names = NameSet(
            owner,
            _TABLES_OF_OWNERS[owner],
            f"SELECT {key_column} FROM {table}"  # noqa: S608
            f" WHERE partition = {self.p} AND tag = {self.p} AND {condition[0]}",
            (self.query.partition, tag, *condition[1]),
        )
        self._add(owner_table, names.clause(), *names.params)
        self.out.names = names
        self.name_sets += 1


_TABLES_OF_OWNERS = {"p.pk": "patients", "s.patient_pk": "patients", "s.pk": "studies"}


def _pn_key_group(key: str) -> str:
    """The key's component group that any match must satisfy: the whole key, or with "="
    the first non-empty group (the matcher compares groups one by one)."""
    if "=" not in key:
        return pn_normal(key)
    return next((g for g in (pn_normal(part) for part in key.split("=", 2)) if g), "")
