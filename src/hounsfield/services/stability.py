"""Stable-series and stable-study detection: `SeriesStable` / `StudyStable` events.

Modalities send a study over minutes, often over several associations, and DICOM has no
"study complete" message (MPPS and Storage Commitment are optional and often absent), so
archives infer completeness from quiet time, as dcm4chee's "study stable" and Orthanc's
`StableAge` do. A scanner asks the index, every few seconds, for the series and studies that
have received no instance for the configured quiet period and were not announced since their
last change; the index marks them and writes the events to the outbox in one transaction
(adapters/index/sql/stability.py), so every replica may scan: none announces twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hounsfield.ports.index import IndexStore, Scope

log = logging.getLogger(__name__)

#: Rows announced per transaction; a backlog drains over several at once.
BATCH = 500


@dataclass(frozen=True, slots=True)
class StabilitySettings:
    series_quiet_seconds: float = 30.0
    study_quiet_seconds: float = 60.0

    @property
    def poll_seconds(self) -> float:
        """A quarter of the shorter quiet period, between 0.2 and 10 seconds."""
        shortest = min(self.series_quiet_seconds, self.study_quiet_seconds)
        return min(max(shortest / 4, 0.2), 10.0)


class StabilityMonitor:
    def __init__(self, index: IndexStore, settings: StabilitySettings) -> None:
        self.index = index
        self.settings = settings

    def scan_once(self, now: datetime | None = None) -> int:
        """Announce every series and study that is now stable; returns how many."""
        now = now or datetime.now(UTC)
        total = 0
        scans: tuple[tuple[Scope, float], ...] = (
            ("series", self.settings.series_quiet_seconds),
            ("study", self.settings.study_quiet_seconds),
        )
        for scope, quiet in scans:
            cutoff = now - timedelta(seconds=quiet)
            while found := self.index.mark_stable(scope, cutoff, BATCH):
                total += len(found)
                if len(found) < BATCH:
                    break
        if total:
            log.info("announced %d stable series/studies", total)
        return total

    def run(self, stop: threading.Event) -> None:
        """Scan until `stop` is set (blocking; `hounsfield worker`)."""
        while not stop.is_set():
            try:
                self.scan_once()
            except Exception:
                log.exception("stability scan failed; retrying")
            stop.wait(self.settings.poll_seconds)

    async def run_async(self) -> None:
        """Scan forever as a background task of `hounsfield serve`."""
        while True:
            try:
                await asyncio.to_thread(self.scan_once)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stability scan failed; retrying")
            await asyncio.sleep(self.settings.poll_seconds)
