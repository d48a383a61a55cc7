"""Fixtures of the port contract suites: each suite runs against every adapter of its port.

`index_factory` yields an `IndexHarness` per index adapter: SQLite in a temporary file, and
PostgreSQL (the machine's server, `HOUNSFIELD_TEST_POSTGRES_URL` or postgresql://postgres@
127.0.0.1:5432/test) with every index in a fresh schema of its own, dropped at the end, so
tests run in parallel under pytest-xdist. Without a reachable server the PostgreSQL tests skip
locally and fail in CI (`require_component`).
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.ports.index import IndexStore
from tests.conftest import require_component

POSTGRES_URL = os.environ.get(
    "HOUNSFIELD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class IndexHarness:
    """Opens fresh, migrated, empty indexes and second handles on the same storage; closes
    them all at the end of the test."""

    name: str
    _open: Callable[[str], IndexStore]
    _fresh: Callable[[], str]
    _opened: list[tuple[str, IndexStore]] = field(default_factory=list)
    #: Called with a location once no open index uses it any more.
    _release: Callable[[str], None] = lambda location: None

    def __call__(self) -> IndexStore:
        location = self._fresh()
        index = self._open(location)
        index.migrate()
        self._opened.append((location, index))
        return index

    def reopen(self, index: IndexStore) -> IndexStore:
        """Another handle on the storage of `index`, as a restarted process would open it."""
        location = next(loc for loc, opened in self._opened if opened is index)
        again = self._open(location)
        again.migrate()
        self._opened.append((location, again))
        return again

    def discard(self, index: IndexStore) -> None:
        """Close one index now (property tests open one per example)."""
        location = next(loc for loc, opened in self._opened if opened is index)
        self._opened = [(loc, opened) for loc, opened in self._opened if opened is not index]
        index.close()
        if all(loc != location for loc, _ in self._opened):
            self._release(location)

    def close_all(self) -> None:
        for _, index in reversed(self._opened):
            index.close()
        locations = dict.fromkeys(loc for loc, _ in self._opened)
        self._opened.clear()
        for location in locations:
            self._release(location)


def _sqlite(tmp_path: Path) -> IndexHarness:
    counter = itertools.count()
    return IndexHarness(
        "sqlite",
        lambda location: SqliteIndex(location, durable=False),
        lambda: str(tmp_path / f"index-{next(counter)}.db"),
    )


@functools.cache
def postgres_problem() -> str | None:
    """Why the test server cannot be used (None when it can): no driver or no server."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'hounsfield[postgresql]')"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"cannot connect to {POSTGRES_URL}: {exc}"
    return None


def require_postgres() -> str:
    """The test server's URL; skips (locally) or fails (CI) without one."""
    problem = postgres_problem()
    require_component(f"PostgreSQL ({problem})", problem is None)
    return POSTGRES_URL


#: Tables of the PostgreSQL schema, children first (emptied with DELETE: TRUNCATE costs 0.3 s).
_TABLES = [
    "derived_copies",
    "instance_metadata",
    "instances",
    "study_modalities",
    "study_names",
    "series",
    "studies",
    "patient_names",
    "patients",
    "outbox",
    "remote_aes",
    "jobs",
    "forward_rules",
    "leases",
    "study_grants",
    "api_keys",
]


class PostgresSchemas:
    """Migrated schemas of the test server, reused across the tests of one process.

    Creating and migrating a schema takes ~0.15 s and dropping it ~0.1 s, more than most
    tests: the Hypothesis suite opens an index per example. So a schema is emptied (DELETE,
    children first) when its test is done and handed to the next one; all are dropped at the
    end of the session. Names are random, so pytest-xdist workers never share one.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.free: list[str] = []
        self.all: list[str] = []

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        self.all.append(f"hf_test_{secrets.token_hex(6)}")
        return self.all[-1]

    def give_back(self, schema: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            exists = conn.execute("SELECT to_regclass('outbox')").fetchone()
            audited = conn.execute("SELECT to_regclass('audit_log')").fetchone()
            # The audit trail is append-only (a trigger refuses deletes): not reusable.
            if (
                audited is not None
                and audited[0] is not None
                and conn.execute("SELECT count(*) FROM audit_log").fetchone() != (0,)
            ):
                exists = None
            if exists is not None and exists[0] is not None:
                conn.execute(";".join(f"DELETE FROM {t}" for t in _TABLES))
                self.free.append(schema)
            else:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def drop(self, *schemas: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def drop_all(self) -> None:
        self.drop(*self.all)


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[list[PostgresSchemas]]:
    """Created on first use (a session without PostgreSQL tests never connects)."""
    holder: list[PostgresSchemas] = []
    yield holder
    if holder:
        holder[0].drop_all()


def _postgres(schemas: PostgresSchemas) -> IndexHarness:
    from hounsfield.adapters.index.postgres import PostgresIndex

    return IndexHarness(
        "postgresql",
        lambda schema: PostgresIndex(schemas.url, schema=schema, durable=False, max_connections=4),
        schemas.take,
        _release=schemas.give_back,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def index_factory(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_schemas: list[PostgresSchemas]
) -> Iterator[IndexHarness]:
    if request.param == "sqlite":
        harness = _sqlite(tmp_path)
    else:
        if not postgres_schemas:
            postgres_schemas.append(PostgresSchemas(require_postgres()))
        harness = _postgres(postgres_schemas[0])
    try:
        yield harness
    finally:
        harness.close_all()


@pytest.fixture
def index(index_factory: IndexHarness) -> IndexStore:
    return index_factory()
