"""What runs beside the servers (`hounsfield serve`) and alone (`hounsfield worker`): the
sweeper, the outbox relay, the event consumers, stable detection, retention and the job
worker."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from hounsfield.adapters import webhook_http
from hounsfield.bootstrap.adapters import bus_opener
from hounsfield.bootstrap.archive import Archive
from hounsfield.ports.index import Event
from hounsfield.services.cloudevents import default_source
from hounsfield.services.deidentify import DEIDENTIFY_JOB
from hounsfield.services.derived import DERIVE_JOB
from hounsfield.services.erasure import RetentionPolicy, RetentionService
from hounsfield.services.events import (
    IndexRelayPosition,
    RelayPosition,
    run_consumer,
    run_relay,
)
from hounsfield.services.fetching import FETCH_JOB
from hounsfield.services.forwarding import FORWARD_JOB
from hounsfield.services.jobs import (
    JobHandler,
    JobWorker,
    RetryPolicy,
    worker_name,
)
from hounsfield.services.stability import StabilityMonitor, StabilitySettings
from hounsfield.services.webhooks import WebhookSender

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 300.0
RETENTION_INTERVAL_SECONDS = 3600.0
#: The consumer groups of the webhook sender and of the forwarding rules on the bus.
WEBHOOK_GROUP = "webhooks"
FORWARDING_GROUP = "forwarding"
DERIVED_GROUP = "htj2k-copies"


def job_handlers(archive: Archive) -> dict[str, JobHandler]:
    """The job kinds this archive runs, by kind (services/jobs.py)."""
    handlers: dict[str, JobHandler] = {}
    if archive.services.forwarding is not None:
        handlers[FORWARD_JOB] = archive.services.forwarding.run_job
    if archive.services.fetching is not None:
        handlers[FETCH_JOB] = archive.services.fetching.run_job
    if archive.services.derived is not None:
        handlers[DERIVE_JOB] = archive.services.derived.run_job
    if archive.services.deidentify is not None:
        handlers[DEIDENTIFY_JOB] = archive.services.deidentify.run_job
    return handlers


def build_job_worker(archive: Archive) -> JobWorker:
    settings = archive.settings
    return JobWorker(
        archive.index.jobs,
        job_handlers(archive),
        concurrency=max(settings.jobs_concurrency, 1),
        lease_seconds=float(settings.jobs_lease_seconds),
        retry=RetryPolicy(
            base_seconds=float(settings.jobs_retry_base_seconds),
            max_seconds=float(settings.jobs_retry_max_seconds),
        ),
    )


def build_stability_monitor(archive: Archive) -> StabilityMonitor | None:
    """None when detection is off (either quiet period set to 0)."""
    settings = archive.settings
    if not settings.series_stable_seconds or not settings.study_stable_seconds:
        return None
    return StabilityMonitor(
        archive.index,
        StabilitySettings(
            series_quiet_seconds=float(settings.series_stable_seconds),
            study_quiet_seconds=float(settings.study_stable_seconds),
        ),
    )


BackgroundTask = Callable[[], Coroutine[Any, Any, None]]


def background_tasks(archive: Archive, *, run_jobs: bool) -> list[BackgroundTask]:
    """What runs beside the servers in `hounsfield serve`, and alone in `hounsfield worker`:
    the sweeper, the outbox relay (one process per data_dir at a time), the event consumers
    (webhooks, forwarding rules), stable detection and, with `run_jobs`, a job worker. Every
    one of them is safe in any number of processes (DESIGN.md key idea 8)."""
    settings = archive.settings

    async def sweeper() -> None:
        while True:
            try:
                removed = await asyncio.to_thread(archive.sweep)
                if removed:
                    log.info("swept %d abandoned uploads", removed)
                if settings.jobs_retention_seconds and archive.services.jobs is not None:
                    await asyncio.to_thread(
                        archive.services.jobs.purge, float(settings.jobs_retention_seconds)
                    )
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)

    open_bus = bus_opener(settings.bus_url, default_source(settings.ae_title))
    position = IndexRelayPosition(
        archive.index,
        worker_name(),
        legacy=RelayPosition(
            settings.data_dir / "events" / "relay-position.json",
            settings.index_url,
            durable=settings.durable,
        ),
    )

    webhooks = WebhookSender(
        settings.webhook_urls,
        settings.webhook_secret,
        default_source(settings.ae_title),
        webhook_http.post,
        max_attempts=settings.webhook_max_attempts,
    )
    groups = [
        FORWARDING_GROUP,
        *([DERIVED_GROUP] if settings.htj2k_copies else []),
        *([WEBHOOK_GROUP] if settings.webhook_urls else []),
    ]

    def declare_groups() -> None:
        bus = open_bus()
        try:
            for group in groups:
                bus.declare(group)
        finally:
            bus.close()

    async def relay() -> None:
        # Before the first publish, so that a new consumer group misses nothing.
        try:
            await asyncio.to_thread(declare_groups)
        except Exception:
            log.exception("could not declare the consumer groups %s", groups)
        await run_relay(archive.index, open_bus, position)

    async def webhook_consumer() -> None:
        await run_consumer(open_bus, WEBHOOK_GROUP, webhooks, max_events=1)

    tasks: list[BackgroundTask] = [sweeper, relay]
    if settings.webhook_urls:
        tasks.append(webhook_consumer)
    if (forwarding := archive.services.forwarding) is not None:

        def forward(event: Event) -> None:
            forwarding.on_event(event)

        async def forwarding_consumer() -> None:
            await run_consumer(open_bus, FORWARDING_GROUP, forward)

        tasks.append(forwarding_consumer)
    if settings.htj2k_copies and (derived := archive.services.derived) is not None:

        async def derived_consumer() -> None:
            await run_consumer(open_bus, DERIVED_GROUP, derived.on_event)

        tasks.append(derived_consumer)
    if settings.retention_days:
        retention = RetentionService(
            archive.index,
            archive.services.lifecycle,
            RetentionPolicy.parse(settings.retention_days),
        )

        async def retention_task() -> None:
            while True:
                try:
                    while await asyncio.to_thread(retention.apply_once):
                        pass
                except Exception:
                    log.exception("retention failed; retrying")
                await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

        tasks.append(retention_task)
    if (monitor := build_stability_monitor(archive)) is not None:
        tasks.append(monitor.run_async)
    if run_jobs:
        worker = build_job_worker(archive)

        async def job_worker() -> None:
            stop = threading.Event()
            try:
                await asyncio.to_thread(worker.run, stop)
            finally:
                stop.set()  # cancelled: the thread ends within one poll

        tasks.append(job_worker)
    return tasks
