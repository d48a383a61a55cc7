"""PostgreSQL connections: a psycopg 3 pool, units of work with retry, and read snapshots.

Every replica of the archive talks to the same database (DESIGN.md key idea 8), so writes
from different processes really run concurrently. Transactions run at READ COMMITTED, the
write path locks the parent rows it changes (`SELECT ... FOR UPDATE`) and counts move by
increments, so concurrent commits of one study serialise on its row instead of losing
updates. What PostgreSQL still refuses under contention (a deadlock between two batches that
lock parents in different orders, a serialization failure) is retried as a whole unit of
work, with jittered back-off (DESIGN.md §2, the IndexStore port: "unit of work with retry").

Commits are durable by default (`synchronous_commit = on`: the WAL is flushed before COMMIT
returns, ADR 0002). `durable=False` sets `synchronous_commit = off` for the session: a crash
may lose the last transactions, never corrupt the database, as with SQLite's NORMAL mode.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import errors, sql
from psycopg_pool import ConnectionPool

T = TypeVar("T")

#: Attempts of a unit of work that keeps meeting deadlocks or serialization failures.
ATTEMPTS = 8
_BACKOFF_SECONDS = 0.005


class Retry(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a unit of work when a concurrent transaction changed what it relies on
    (for example deleted a parent row it was about to use): run the whole unit again."""


RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected, Retry)


def open_pool(
    conninfo: str,
    *,
    schema: str | None,
    durable: bool,
    min_size: int = 1,
    max_size: int = 8,
    name: str = "hounsfield-index",
) -> ConnectionPool[psycopg.Connection[tuple[object, ...]]]:
    """A pool of autocommit connections (transactions are explicit), each configured once:
    the search path when the archive lives in its own schema, plans, and commit durability."""

    def configure(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if schema is not None:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        # psycopg prepares a statement after five runs, and PostgreSQL may then switch it to
        # a generic plan, blind to the parameters: a name prefix matching 5 patients and
        # one matching 5,000 would share a plan. Custom plans cost ~0.1 ms of planning.
        conn.execute("SET plan_cache_mode TO force_custom_plan")
        if not durable:
            conn.execute("SET synchronous_commit TO off")

    pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=configure,
        name=name,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


def run_transaction(
    pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]],
    work: Callable[[psycopg.Connection[tuple[object, ...]]], T],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """Run `work(conn)` in one transaction, again from the start if PostgreSQL reports a
    deadlock or serialization failure (or `work` raises `Retry`). `work` must derive
    everything from the database and its arguments: it may run several times."""
    for attempt in range(1, attempts + 1):
        try:
            with pool.connection() as conn, conn.transaction():
                return work(conn)
        except RETRYABLE:
            if attempt == attempts:
                raise
            time.sleep(_BACKOFF_SECONDS * 2**attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def run_read(
    pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]],
    work: Callable[[psycopg.Connection[tuple[object, ...]]], T],
    *,
    snapshot: bool = False,
) -> T:
    """Run read-only `work(conn)`. With `snapshot`, its statements share one REPEATABLE READ
    snapshot (a query's candidate streams and row fetches); otherwise each statement sees
    the latest commits (autocommit), which costs no BEGIN/COMMIT round trips."""
    with pool.connection() as conn:
        if not snapshot:
            return work(conn)
        # psycopg puts these in the BEGIN statement itself: no extra round trip.
        conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        try:
            with conn.transaction():
                return work(conn)
        finally:
            conn.isolation_level, conn.read_only = None, None
