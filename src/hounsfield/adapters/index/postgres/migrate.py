"""The PostgreSQL migration runner: `migrations/NNNN_*.sql` in order, all pending ones in one
transaction together with their `schema_version` rows (PostgreSQL DDL is transactional, so a
failed migration leaves nothing behind).

Several replicas may start at once and each may run `migrate()` (issue 5: "at start-up when
allowed"); a transaction-scoped advisory lock makes them take turns, so the second one finds
the schema up to date instead of racing the first one's CREATE TABLE. The lock is one key for
the whole database, not per schema: creating the pg_trgm extension (0002) is database-wide.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from hounsfield.adapters.index.sql.migrations import check_applied, discover

PACKAGE = "hounsfield.adapters.index.postgres"
#: pg_advisory_xact_lock key of schema changes ("HFMIGRAT" as a 64-bit integer).
LOCK_KEY = int.from_bytes(b"HFMIGRAT", "big") - 2**63


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str | None) -> int:
    """Bring the schema up to date; returns the schema version. `conn` is in autocommit
    mode; `schema`, when given, is created if missing (its search path is already set)."""
    known = discover(PACKAGE)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        if schema is not None:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            int(str(v)): str(c)
            for v, c in conn.execute("SELECT version, checksum FROM schema_version")
        }
        pending = check_applied(known, applied)
        for migration in pending:
            conn.execute(migration.sql.encode())  # no parameters: several statements
            conn.execute(
                "INSERT INTO schema_version (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    return known[-1].version if known else 0


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The highest applied migration, 0 for an empty schema."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(str(row[0])) if row is not None and row[0] is not None else 0
