"""`SqlDocumentTable`: named JSON documents in one table (forwarding rules), shared by the
SQLite and PostgreSQL adapters. The service that owns the documents validates them; the
table only stores them, so a new field of a rule needs no migration."""

# ruff: noqa: S608 - the table name is checked to be an identifier; values are parameters

from __future__ import annotations

from typing import Any

from hounsfield.adapters.index.sql.dialect import Connection, Dialect
from hounsfield.adapters.index.sql.jobstore import Reader, Writer


class SqlDocumentTable:
    def __init__(self, dialect: Dialect, write: Writer, read: Reader, table: str) -> None:
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        self.d = dialect
        self.table = table
        self._write = write
        self._read = read

    def put(self, name: str, document: dict[str, Any]) -> bool:
        def work(conn: Connection) -> bool:
            existed = self.d.run(
                conn,
                f"SELECT 1 FROM {self.table} WHERE name = ?",
                (name,),
            ).fetchone()
            self.d.run(
                conn,
                f"INSERT INTO {self.table} (name, document) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET document = excluded.document",
                (name, self.d.to_json(document)),
            )
            return existed is None

        return self._write(work)

    def get(self, name: str) -> dict[str, Any] | None:
        row = self._read(
            lambda c: self.d.run(
                c,
                f"SELECT document FROM {self.table} WHERE name = ?",
                (name,),
            ).fetchone()
        )
        return None if row is None else self.d.from_json(row[0])

    def all(self) -> list[dict[str, Any]]:
        rows = self._read(
            lambda c: self.d.run(
                c,
                f"SELECT document FROM {self.table} ORDER BY name",
            ).fetchall()
        )
        return [self.d.from_json(row[0]) for row in rows]

    def delete(self, name: str) -> bool:
        return self._write(
            lambda c: (
                self.d.run(
                    c,
                    f"DELETE FROM {self.table} WHERE name = ?",
                    (name,),
                ).rowcount
                == 1
            )
        )
