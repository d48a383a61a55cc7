"""Study grants in SQL, shared by both index adapters (ports/grants.py)."""

# ruff: noqa: S608 - statements are built from constants and `?` marks; values are parameters

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from hounsfield.adapters.index.sql.dialect import Connection, Dialect
from hounsfield.adapters.index.sql.jobs import unix
from hounsfield.adapters.index.sql.jobstore import Reader, Writer
from hounsfield.ports.grants import StudyGrant

_COLUMNS = "id, partition, study_uid, subject, created_by, created_at, expires_at"


class SqlGrantStore:
    def __init__(self, dialect: Dialect, write: Writer, read: Reader) -> None:
        self.d = dialect
        self._write = write
        self._read = read

    def _grant(self, row: Any) -> StudyGrant:
        return StudyGrant(
            id=int(row[0]),
            partition=row[1],
            study_uid=row[2],
            subject=row[3],
            created_by=row[4],
            created_at=self.d.from_time(row[5]),
            expires_at=None if row[6] is None else self.d.from_time(row[6]),
        )

    def create(
        self,
        partition: str,
        study_uid: str,
        subject: str,
        created_by: str,
        expires_at: datetime | None,
    ) -> StudyGrant:
        expires = None if expires_at is None else self.d.to_time(unix(expires_at))

        def work(conn: Connection) -> StudyGrant:
            row = self.d.run(
                conn,
                "INSERT INTO study_grants (partition, study_uid, subject, created_by,"
                f" created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
                (partition, study_uid, subject, created_by, self.d.to_time(time.time()), expires),
            ).fetchone()
            return self._grant(row)

        return self._write(work)

    def revoke(self, grant_id: int, partition: str) -> bool:
        return self._write(
            lambda c: (
                self.d.run(
                    c,
                    "DELETE FROM study_grants WHERE id = ? AND partition = ?",
                    (grant_id, partition),
                ).rowcount
                == 1
            )
        )

    def find(
        self, partition: str, subject: str | None = None, study_uid: str | None = None
    ) -> list[StudyGrant]:
        sql = f"SELECT {_COLUMNS} FROM study_grants WHERE partition = ?"
        params: list[object] = [partition]
        if subject is not None:
            sql += " AND subject = ?"
            params.append(subject)
        if study_uid is not None:
            sql += " AND study_uid = ?"
            params.append(study_uid)
        rows = self._read(lambda c: self.d.run(c, sql + " ORDER BY id DESC", params).fetchall())
        return [self._grant(row) for row in rows]

    def granted(self, subject: str, study_uid: str, now: datetime) -> list[str]:
        moment = self.d.to_time(unix(now))
        rows = self._read(
            lambda c: self.d.run(
                c,
                "SELECT DISTINCT partition FROM study_grants WHERE subject = ? AND study_uid = ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY partition",
                (subject, study_uid, moment),
            ).fetchall()
        )
        return [str(row[0]) for row in rows]
