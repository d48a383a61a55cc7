"""Retention's query in SQL, shared by both index adapters (services/erasure.py)."""

from __future__ import annotations

from hounsfield.adapters.index.sql.dialect import Connection, Dialect


def studies_unchanged_since(
    d: Dialect, conn: Connection, partition: str, cutoff: float, limit: int
) -> list[str]:
    """Studies of a partition whose last commit is older than `cutoff` (Unix time), oldest
    first: retention (services/erasure.py). Served by the studies_updated index."""
    rows = d.run(
        conn,
        "SELECT study_uid FROM studies WHERE partition = ? AND updated_at < ?"
        " ORDER BY updated_at LIMIT ?",
        (partition, d.to_time(cutoff), limit),
    ).fetchall()
    return [str(row[0]) for row in rows]
