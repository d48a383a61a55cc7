"""Bulk fill of a Hounsfield data directory through its own ingest service (no HTTP).

Used for the QIDO figure at 100k studies / 1M instances, which would take hours through STOW
on both archives. The objects go through the same `prepare` (header walk) and `store` (index
rows, blobs) as an upload, in large batches, with durability off while filling; the server is
started on the filled directory afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench.data import TinyArchive, batched


def fill(
    data_dir: Path,
    archive: TinyArchive,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[int, float]:
    """Store every instance of `archive` into `data_dir`; return (stored, seconds)."""
    from hounsfield.bootstrap import open_archive
    from hounsfield.config import load_settings
    from hounsfield.services.ingest import Outcome

    settings = load_settings(
        environ={"HOUNSFIELD_DATA_DIR": str(data_dir), "HOUNSFIELD_DURABLE": "false"}
    )
    opened = open_archive(settings)
    ingest = opened.services.ingest
    staging = opened.services.staging
    partition = settings.default_partition
    stored = 0
    start = time.perf_counter()
    try:
        for batch in batched(archive.instances(), batch_size):
            staged = [staging.stage_bytes(instance.data) for instance in batch]
            results = ingest.ingest_files(staged, partition)
            failed = [r for r in results if r.outcome is Outcome.FAILED]
            if failed:
                raise RuntimeError(f"bulk fill: {len(failed)} failed, e.g. {failed[0].message}")
            stored += len(results)
            if progress is not None:
                progress(stored, time.perf_counter() - start)
    finally:
        opened.close()
    return stored, time.perf_counter() - start


def mark_events_delivered(data_dir: Path, page: int = 100_000) -> int:
    """Make a filled directory an archive whose events were delivered long ago: announce
    every stable series and study (as the server's stability monitor would have), then
    advance the outbox relay past the last event; return that position.

    A fill writes one InstanceStored event per instance. Left undelivered, a server started
    on the directory would spend the measurement relaying a million events and acting on
    them (HTJ2K copies, stable-series detection), so the QIDO figures would be those of an
    archive busy catching up.
    """
    from hounsfield.bootstrap import open_archive
    from hounsfield.config import load_settings
    from hounsfield.services.events import IndexRelayPosition
    from hounsfield.services.stability import StabilityMonitor, StabilitySettings

    settings = load_settings(environ={"HOUNSFIELD_DATA_DIR": str(data_dir)})
    opened = open_archive(settings)
    index = opened.index
    owner = "bench-fill"
    try:
        StabilityMonitor(index, StabilitySettings(0.0, 0.0)).scan_once()
        start = index.claim_lease(IndexRelayPosition.NAME, owner, 600.0)
        if start is None:
            raise RuntimeError("the outbox relay lease is held by a running server")
        last = start
        while events := index.events_since(last, page):
            last = events[-1].seq
        index.advance_lease(IndexRelayPosition.NAME, owner, last)
        index.release_lease(IndexRelayPosition.NAME, owner)
    finally:
        opened.close()
    return last
