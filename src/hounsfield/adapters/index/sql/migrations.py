"""Numbered, immutable schema migrations shipped as `NNNN_name.sql` package resources.

Each database records the migrations it has applied, with a checksum of their text, in a
`schema_version` table. A migration file is never edited once released: a change is a new
file. The checksum turns an accidental edit into a loud error instead of a silent schema
drift between installations. The runner itself is per back end (transactions differ).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from hounsfield.domain.errors import HounsfieldError

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class MigrationError(HounsfieldError):
    """The schema cannot be brought to this version of the code."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str


def discover(package: str, directory: str = "migrations") -> list[Migration]:
    """The migrations of a back end, in order; versions must run 1, 2, 3... without gaps."""
    found: list[Migration] = []
    for entry in resources.files(package).joinpath(directory).iterdir():
        match = _NAME.fullmatch(entry.name)
        if match is None:
            continue
        sql = entry.read_text(encoding="utf-8")
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        found.append(Migration(int(match[1]), match[2], sql, checksum))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing in {package}")
    return found


def check_applied(known: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply, after checking the applied ones are ours, unchanged."""
    by_version = {m.version: m for m in known}
    for version, checksum in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has schema version {version}, newer than this software knows"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{migration.name} was edited after it was applied"
            )
    return [m for m in known if m.version not in applied]
