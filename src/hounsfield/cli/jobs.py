"""`hounsfield worker` and `hounsfield jobs`: run background work, and inspect or steer it.

`worker` runs what `serve` runs beside its servers (services/jobs.py, the event consumers,
stable detection, the outbox relay when no other process of this data_dir relays), without
HTTP or DIMSE: start as many as the work needs, on any machine that reaches the index.
`jobs` reads and changes job rows directly in the index database, so it works whether or not
a server is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from datetime import datetime

import click
import orjson

from hounsfield.bootstrap import Archive, background_tasks, open_archive
from hounsfield.cli.opened import opened_archive
from hounsfield.config import Settings
from hounsfield.ports.jobs import Job, JobFilter, JobState
from hounsfield.services.jobs import JobService, job_document


def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then stop the tasks and close the archive."""
    archive = open_archive(settings)
    try:
        asyncio.run(_work(archive))
    finally:
        archive.close()


async def _work(archive: Archive) -> None:
    tasks = [asyncio.create_task(task()) for task in background_tasks(archive, run_jobs=True)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(f"hounsfield worker: {len(tasks)} tasks; index {archive.settings.index_url}")
    await stop.wait()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.contextmanager
def _jobs(settings: Settings) -> Iterator[JobService]:
    with opened_archive(settings) as archive:
        assert archive.services.jobs is not None
        yield archive.services.jobs


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _print_table(jobs: list[Job]) -> None:
    header = f"{'ID':>8}  {'KIND':<10} {'STATE':<10} {'TRIES':>5}  {'RUN AT':<19}  LAST ERROR"
    click.echo(header)
    for job in jobs:
        tries = f"{job.attempts}/{job.max_attempts}"
        error = (job.last_error or "").replace("\n", " ")[:60]
        click.echo(
            f"{job.id:>8}  {job.kind:<10} {job.state.value:<10} {tries:>5}"
            f"  {_when(job.run_at):<19}  {error}"
        )


def list_jobs(settings: Settings, where: JobFilter, as_json: bool) -> None:
    with _jobs(settings) as jobs:
        found = jobs.find(where)
        if as_json:
            click.echo(orjson.dumps([job_document(j) for j in found]).decode())
            return
        _print_table(found)
        counts = jobs.counts()
    summary = ", ".join(
        f"{state.value} {sum(n for (_, s), n in counts.items() if s == state)}"
        for state in JobState
    )
    click.echo(f"-- all jobs: {summary}")


def show_job(settings: Settings, job_id: int) -> None:
    with _jobs(settings) as jobs:
        job = jobs.get(job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    click.echo(orjson.dumps(job_document(job), option=orjson.OPT_INDENT_2).decode())


def change_job(settings: Settings, job_id: int, action: str) -> None:
    with _jobs(settings) as jobs:
        done = jobs.retry(job_id) if action == "retry" else jobs.cancel(job_id)
        job = jobs.get(job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    if not done:
        raise click.ClickException(f"job {job_id} is {job.state.value}: cannot {action} it")
    click.echo(f"job {job_id}: {job.state.value}")


def purge_jobs(settings: Settings, older_than: float) -> None:
    with _jobs(settings) as jobs:
        deleted = jobs.purge(older_than)
    click.echo(f"deleted {deleted} finished job(s)")
