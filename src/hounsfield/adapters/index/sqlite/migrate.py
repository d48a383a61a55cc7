"""The SQLite migration runner: applies `migrations/NNNN_*.sql` in order, each in one
transaction together with its `schema_version` row, so a failed migration leaves nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from hounsfield.adapters.index.sql.migrations import Migration, check_applied, discover

PACKAGE = "hounsfield.adapters.index.sqlite"


def statements(script: str) -> list[str]:
    """Split a script into statements with SQLite's own tokenizer rules
    (`sqlite3.complete_statement`), so semicolons in comments and strings are safe."""
    found: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    if buffer.strip() and any(
        part.strip() and not part.strip().startswith("--") for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return found


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    for statement in statements(migration.sql):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO schema_version (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
        (
            migration.version,
            migration.name,
            migration.checksum,
            datetime.now(UTC).isoformat(),
        ),
    )


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the schema version. Safe to run concurrently
    from several processes: the check and the changes share one write transaction."""
    known = discover(PACKAGE)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    conn.execute("BEGIN IMMEDIATE")
    try:
        applied = {
            int(v): str(c) for v, c in conn.execute("SELECT version, checksum FROM schema_version")
        }
        pending = check_applied(known, applied)
        for migration in pending:
            _apply(conn, migration)
        conn.execute("COMMIT")
        if pending:
            conn.execute("ANALYZE sqlite_schema")  # reload planner statistics (0002)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return known[-1].version if known else 0


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration, 0 for an empty database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)
