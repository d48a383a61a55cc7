"""Named leases with a position, shared by both index adapters (IndexStore.claim_lease).

One upsert acquires a free or expired lease, or renews one the caller holds, and returns the
position; when another owner holds a live lease, the upsert's WHERE clause makes it a no-op
that returns no row. Both SQLite (3.35+) and PostgreSQL support `ON CONFLICT DO UPDATE ...
WHERE ... RETURNING` with these semantics.
"""

from __future__ import annotations

from hounsfield.adapters.index.sql.dialect import Connection, Dialect


def claim(
    d: Dialect, conn: Connection, name: str, owner: str, seconds: float, now: float
) -> int | None:
    row = d.run(
        conn,
        "INSERT INTO leases (name, owner, lease_until, position) VALUES (?, ?, ?, 0)"
        " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
        " lease_until = excluded.lease_until"
        " WHERE leases.owner = excluded.owner OR leases.lease_until < ?"
        " RETURNING position",
        (name, owner, d.to_time(now + seconds), d.to_time(now)),
    ).fetchone()
    return None if row is None else int(row[0])


def advance(d: Dialect, conn: Connection, name: str, owner: str, position: int) -> bool:
    cursor = d.run(
        conn,
        "UPDATE leases SET position = ? WHERE name = ? AND owner = ?",
        (position, name, owner),
    )
    return cursor.rowcount == 1


def release(d: Dialect, conn: Connection, name: str, owner: str) -> None:
    d.run(
        conn,
        "UPDATE leases SET lease_until = ? WHERE name = ? AND owner = ?",
        (d.to_time(0.0), name, owner),
    )
