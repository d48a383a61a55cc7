"""`SqlApiKeyStore`: API keys (ports/auth.py) in the index database, shared by both adapters.

Only the SHA-256 digest of a key's secret is stored; the key id, which the presented key
carries in clear, finds the row, and the caller compares digests in constant time. Revoked
keys stay, with the moment of revocation, for the record.
"""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

from datetime import datetime
from typing import Any

from hounsfield.adapters.index.sql.dialect import Dialect
from hounsfield.adapters.index.sql.jobstore import Reader, Writer
from hounsfield.ports.auth import ApiKey

_COLUMNS = "key_id, name, role, partitions, created_at, expires_at, revoked_at, secret_sha256"


def _key(d: Dialect, row: Any) -> ApiKey:
    return ApiKey(
        key_id=row[0],
        name=row[1],
        role=row[2],
        partitions=tuple(p for p in str(row[3]).split(",") if p),
        created_at=d.from_time(row[4]),
        expires_at=None if row[5] is None else d.from_time(row[5]),
        revoked_at=None if row[6] is None else d.from_time(row[6]),
    )


class SqlApiKeyStore:
    def __init__(self, dialect: Dialect, write: Writer, read: Reader) -> None:
        self.d = dialect
        self._write = write
        self._read = read

    def _time(self, moment: datetime | None) -> object:
        return None if moment is None else self.d.to_time(moment.timestamp())

    def add(self, key: ApiKey, secret_sha256: str) -> None:
        params = (
            key.key_id,
            key.name,
            key.role,
            ",".join(key.partitions),  # partition names have no commas (domain/identifiers.py)
            self._time(key.created_at),
            self._time(key.expires_at),
            self._time(key.revoked_at),
            secret_sha256,
        )
        self._write(
            lambda c: self.d.run(
                c, f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params
            )
        )

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        row = self._read(
            lambda c: self.d.run(
                c, f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        )
        return None if row is None else (_key(self.d, row), str(row[7]))

    def list(self) -> list[ApiKey]:
        rows = self._read(
            lambda c: self.d.run(
                c, f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        )
        return [_key(self.d, row) for row in rows]

    def revoke(self, key_id: str, when: datetime) -> bool:
        cursor = self._write(
            lambda c: self.d.run(
                c,
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (self._time(when), key_id),
            )
        )
        return bool(cursor.rowcount == 1)
