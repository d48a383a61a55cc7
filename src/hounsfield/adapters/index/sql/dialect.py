"""What differs between the SQLite and PostgreSQL index for statements they otherwise share.

Most of the two adapters' SQL is written once (jobs, stability): the text uses `?`
placeholders and `Dialect.sql` rewrites them for psycopg; times and JSON go through the
dialect's converters (SQLite keeps Unix seconds and JSON bytes, PostgreSQL timestamptz and
jsonb), and claims append the back end's row lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    """A DB-API style connection with `execute` (sqlite3.Connection, psycopg.Connection)."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    placeholder: str  # "?" (sqlite3) or "%s" (psycopg)
    lock_suffix: str  # appended to a SELECT whose rows the transaction will update
    to_time: Callable[[float], object]
    from_time: Callable[[Any], datetime]
    to_json: Callable[[dict[str, Any]], object]
    from_json: Callable[[Any], dict[str, Any]]

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def run(self, conn: Connection, text: str, params: Sequence[object] = ()) -> Cursor:
        cursor: Cursor = conn.execute(self.sql(text), tuple(params))
        return cursor


def marks(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)
