"""What differs between the SQLite and PostgreSQL index for statements they otherwise share.

Most of the two adapters' SQL is written once (jobs, stability): the text uses `?`
placeholders and `Dialect.sql` rewrites them for psycopg; times and JSON go through the
dialect's converters (SQLite keeps Unix seconds and JSON bytes, PostgreSQL timestamptz and
jsonb), claims and updates append the back end's row lock, and a list of values is matched
with one array parameter on PostgreSQL (a round trip per statement is what a server costs,
DESIGN.md §4) and with `IN (?, ...)` lists on SQLite.
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
    lock_suffix: str  # appended to a SELECT whose rows the transaction will claim
    row_lock: str  # appended to a SELECT whose rows the transaction will update, waiting for them
    arrays: bool  # the driver binds a list as one array parameter (`= ANY(?)`, `unnest(?)`)
    to_time: Callable[[float], object]
    from_time: Callable[[Any], datetime]
    to_json: Callable[[dict[str, Any]], object]
    from_json: Callable[[Any], dict[str, Any]]

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def run(self, conn: Connection, text: str, params: Sequence[object] = ()) -> Cursor:
        cursor: Cursor = conn.execute(self.sql(text), tuple(params))
        return cursor

    def in_list(self, column: str, values: Sequence[object]) -> list[tuple[str, list[object]]]:
        """Conditions that together match `column` against `values`, each with its parameters
        and meant for a statement of its own: one `column = ANY(?)` where the driver binds
        arrays, else `column IN (?, ...)` of at most `IN_LIST` values (SQLite bounds the
        parameters of a statement). No values, no condition."""
        if not values:
            return []
        if self.arrays:
            return [(f"{column} = ANY(?)", [list(values)])]
        return [
            (f"{column} IN ({marks(len(chunk))})", list(chunk))
            for chunk in (values[at : at + IN_LIST] for at in range(0, len(values), IN_LIST))
        ]


#: Values per `IN (?, ...)` list: well under the 999 parameters older SQLite builds allow.
IN_LIST = 500


def marks(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)
