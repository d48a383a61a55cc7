"""`hounsfield import`: bulk import of files and folders through the ingest service.

Files are read, hashed and walked in parallel threads, stored in batches (one durable index
commit per batch), and recorded in a journal so that an interrupted import resumes where it
stopped. The summary counts stored, duplicate and rejected files with their reasons.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hounsfield.bootstrap import open_archive
from hounsfield.config import Settings
from hounsfield.domain.status import FailureReason, WarningReason
from hounsfield.services.ingest import IngestService, InstanceResult, Outcome, Prepared

_IGNORED_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


@dataclass
class ImportSummary:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, result: InstanceResult) -> None:
        if result.outcome is Outcome.STORED:
            self.stored += 1
        elif result.warning is WarningReason.DUPLICATE_KEPT:
            self.duplicates += 1
        elif result.outcome is Outcome.WARNING:
            self.stored += 1
        else:
            self.rejected += 1
            code = f"{int(result.failure):04X}" if result.failure is not None else "----"
            self.reasons[f"{code} {result.message}"] += 1

    def print(self, console: Console | None = None) -> None:
        out = console or Console(stderr=True)
        out.print(
            f"stored {self.stored}, duplicates {self.duplicates}, rejected {self.rejected}"
            + (f", skipped {self.skipped} already imported" if self.skipped else "")
        )
        for reason, count in self.reasons.most_common(20):
            out.print(f"  rejected {count}: {reason}")


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.name not in _IGNORED_NAMES:
                    yield child
        elif path.is_file():
            yield path


class Journal:
    """Files already imported (path, size, modification time), so a rerun skips them."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS imported ("
            " path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, outcome TEXT)"
        )

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        stat = path.stat()
        return str(path.resolve()), stat.st_size, stat.st_mtime_ns

    def done(self, path: Path) -> bool:
        name, size, mtime = self._key(path)
        row = self._db.execute(
            "SELECT 1 FROM imported WHERE path = ? AND size = ? AND mtime_ns = ?",
            (name, size, mtime),
        ).fetchone()
        return row is not None

    def record(self, entries: list[tuple[Path, str]]) -> None:
        rows = [(*self._key(p), outcome) for p, outcome in entries if p.exists()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO imported VALUES (?, ?, ?, ?)", rows)

    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM imported")

    def close(self) -> None:
        self._db.close()


def run_import(
    settings: Settings,
    paths: list[Path],
    *,
    partition: str,
    workers: int = 4,
    batch_size: int = 64,
    restart: bool = False,
    progress: bool = True,
) -> ImportSummary:
    archive = open_archive(settings)
    journal = Journal(settings.data_dir / "import-journal.db")
    summary = ImportSummary()
    try:
        if restart:
            journal.clear()
        todo: list[Path] = []
        for path in _files(paths):
            if journal.done(path):
                summary.skipped += 1
            else:
                todo.append(path)
        total_bytes = sum(p.stat().st_size for p in todo)
        ingest = archive.services.ingest
        staging = archive.services.staging

        def prepare(path: Path) -> Prepared | InstanceResult:
            return ingest.prepare(staging.stage_copy(path), partition)

        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=not progress, transient=False) as bar:
            task = bar.add_task("importing", total=total_bytes)
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                window: list[tuple[Path, Future[Prepared | InstanceResult]]] = []
                for path in todo:
                    window.append((path, pool.submit(prepare, path)))
                    if len(window) >= batch_size:
                        _store_window(window, ingest, journal, summary)
                        bar.advance(task, sum(p.stat().st_size for p, _ in window if p.exists()))
                        window = []
                if window:
                    _store_window(window, ingest, journal, summary)
                    bar.advance(task, sum(p.stat().st_size for p, _ in window if p.exists()))
    finally:
        journal.close()
        archive.close()
    return summary


def _store_window(
    window: list[tuple[Path, Future[Prepared | InstanceResult]]],
    ingest: IngestService,
    journal: Journal,
    summary: ImportSummary,
) -> None:
    outcomes: dict[int, InstanceResult] = {}
    ready: list[tuple[int, Prepared]] = []
    for i, (_, future) in enumerate(window):
        try:
            outcome = future.result()
        except OSError as exc:
            outcomes[i] = InstanceResult(
                Outcome.FAILED,
                failure=FailureReason.PROCESSING_FAILURE,
                message=f"unreadable: {exc.strerror}",
            )
            continue
        if isinstance(outcome, Prepared):
            ready.append((i, outcome))
        else:
            outcomes[i] = outcome
    for (i, _), result in zip(ready, ingest.store([p for _, p in ready]), strict=True):
        outcomes[i] = result
    entries = []
    for i, (path, _) in enumerate(window):
        result = outcomes[i]
        summary.add(result)
        entries.append((path, result.outcome.value))
    journal.record(entries)
