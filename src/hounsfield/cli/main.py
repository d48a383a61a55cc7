"""`hounsfield`: serve, worker, jobs, keys, import, check, migrate, and the DIMSE clients."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hounsfield import __version__
from hounsfield.config import ConfigError, Settings, load_settings
from hounsfield.domain.deidentify import OPTIONS as DEID_OPTIONS

if TYPE_CHECKING:
    from hounsfield.domain.qrmodel import Model


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hounsfield")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML settings file (see config/defaults.toml); HOUNSFIELD_* variables override it.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Hounsfield medical imaging archive."""
    try:
        ctx.obj = load_settings(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if config_file is not None:
        os.environ["HOUNSFIELD_CONFIG"] = str(config_file.resolve())
    logging.basicConfig(
        level=ctx.obj.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the archive: DICOMweb at /dicom-web and the admin API at /api."""
    from hounsfield.cli.serve import run

    try:
        run(_settings(ctx))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the index schema, then exit."""
    import dataclasses

    from hounsfield.bootstrap import open_archive

    archive = open_archive(dataclasses.replace(_settings(ctx), index_migrate=True))
    archive.close()
    click.echo(f"index schema is up to date ({_settings(ctx).index_url})")


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--partition", default=None, help="Partition to import into (default: the default).")
@click.option("--workers", default=4, show_default=True, help="Files read in parallel.")
@click.option("--batch", default=64, show_default=True, help="Instances per index commit.")
@click.option("--restart", is_flag=True, help="Ignore the journal of earlier runs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def import_(
    ctx: click.Context,
    paths: tuple[Path, ...],
    partition: str | None,
    workers: int,
    batch: int,
    restart: bool,
    quiet: bool,
) -> None:
    """Import DICOM files and folders (recursively), resumably."""
    from hounsfield.cli.importer import run_import

    settings = _settings(ctx)
    summary = run_import(
        settings,
        list(paths),
        partition=partition or settings.default_partition,
        workers=workers,
        batch_size=batch,
        restart=restart,
        progress=not quiet,
    )
    summary.print()
    if summary.rejected and not summary.stored and not summary.duplicates:
        sys.exit(1)


@cli.command()
@click.option("--repair", is_flag=True, help="Delete blobs that no index row references.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def check(ctx: click.Context, repair: bool, quiet: bool) -> None:
    """Verify every stored object against its recorded SHA-256 and size, and the index against
    the blob store. Exits 1 when a problem is found."""
    from hounsfield.cli.checker import run_check

    problems = run_check(_settings(ctx), repair=repair, progress=not quiet)
    sys.exit(1 if problems else 0)


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run background work without servers: jobs, event consumers, stable detection."""
    from hounsfield.cli.jobs import run_worker

    run_worker(_settings(ctx))


@cli.group()
def jobs() -> None:
    """Inspect and steer durable jobs (forwarding...)."""


_STATES = click.Choice(["queued", "running", "succeeded", "dead", "cancelled"])


@jobs.command("list")
@click.option("--state", type=_STATES, default=None, help="Only jobs in this state.")
@click.option("--kind", default=None, help="Only jobs of this kind (forward...).")
@click.option("--partition", default=None, help="Only jobs of this partition.")
@click.option("--before", type=int, default=None, help="Only jobs with a lower id (paging).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON, as GET /api/jobs returns it.")
@click.pass_context
def jobs_list(
    ctx: click.Context,
    state: str | None,
    kind: str | None,
    partition: str | None,
    before: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Jobs, newest first."""
    from hounsfield.cli.jobs import list_jobs
    from hounsfield.ports.jobs import JobFilter, JobState

    where = JobFilter(
        state=None if state is None else JobState(state),
        kind=kind,
        partition=partition,
        before_id=before,
        limit=limit,
    )
    list_jobs(_settings(ctx), where, as_json)


@jobs.command("show")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_show(ctx: click.Context, job_id: int) -> None:
    """One job, with its payload and last error."""
    from hounsfield.cli.jobs import show_job

    show_job(_settings(ctx), job_id)


@jobs.command("retry")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_retry(ctx: click.Context, job_id: int) -> None:
    """Queue a dead or cancelled job again (attempts start over)."""
    from hounsfield.cli.jobs import change_job

    change_job(_settings(ctx), job_id, "retry")


@jobs.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: int) -> None:
    """Cancel a queued job."""
    from hounsfield.cli.jobs import change_job

    change_job(_settings(ctx), job_id, "cancel")


@jobs.command("purge")
@click.option(
    "--older-than",
    type=float,
    default=7 * 86400,
    show_default=True,
    help="Seconds since the job finished.",
)
@click.pass_context
def jobs_purge(ctx: click.Context, older_than: float) -> None:
    """Delete succeeded and cancelled jobs that finished long enough ago."""
    from hounsfield.cli.jobs import purge_jobs

    purge_jobs(_settings(ctx), older_than)


@cli.group()
def keys() -> None:
    """Create, list and revoke API keys (docs/security.md)."""


@keys.command("create")
@click.option("--name", required=True, help="Who or what uses the key (a person, a viewer...).")
@click.option(
    "--role",
    type=click.Choice(["viewer", "uploader", "admin", "auditor"]),
    required=True,
    help="viewer: read; uploader: read and store; admin: everything; auditor: audit trail.",
)
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    help="A partition the key may use (repeat; '*' = all; default: the default partition).",
)
@click.option("--expires-days", type=click.IntRange(1, 36500), default=None, help="Lifetime.")
@click.option("--json", "as_json", is_flag=True, help="JSON with the key and its scope.")
@click.pass_context
def keys_create(
    ctx: click.Context,
    name: str,
    role: str,
    partitions: tuple[str, ...],
    expires_days: int | None,
    as_json: bool,
) -> None:
    """Create a key; it is printed once (only its SHA-256 digest is stored)."""
    from hounsfield.cli.keys import create_key

    create_key(_settings(ctx), name, role, partitions, expires_days, as_json)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """Every key with its scope and state (never the secret)."""
    from hounsfield.cli.keys import list_keys

    list_keys(_settings(ctx), as_json)


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by its id (the part after hfk_ and before the next '_')."""
    from hounsfield.cli.keys import revoke_key

    revoke_key(_settings(ctx), key_id)


@cli.group()
def patient() -> None:
    """One patient's data: erase it everywhere (GDPR) or export it (right of access)."""


_PATIENT_OPTIONS = [
    click.option("--patient-id", required=True, help="The exact Patient ID."),
    click.option("--issuer", default=None, help="Issuer of Patient ID, when IDs are not unique."),
    click.option("--partition", default=None, help="Partition (default: the default)."),
]


def _patient_options(function: Any) -> Any:
    for option in reversed(_PATIENT_OPTIONS):
        function = option(function)
    return function


@patient.command("erase")
@_patient_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def patient_erase(
    ctx: click.Context, patient_id: str, issuer: str | None, partition: str | None, yes: bool
) -> None:
    """Delete every study of the patient: index, blobs, HTJ2K copies, caches, queued jobs."""
    from hounsfield.cli.patients import erase

    settings = _settings(ctx)
    if not yes:
        click.confirm("Erase every study of this patient? This cannot be undone", abort=True)
    erase(settings, partition or settings.default_partition, patient_id, issuer)


@patient.command("export")
@_patient_options
@click.option("--to", "target", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def patient_export(
    ctx: click.Context,
    patient_id: str,
    issuer: str | None,
    partition: str | None,
    target: Path,
    quiet: bool,
) -> None:
    """Copy every stored object of the patient, untouched, with a manifest (SHA-256)."""
    from hounsfield.cli.patients import export

    settings = _settings(ctx)
    export(settings, partition or settings.default_partition, patient_id, issuer, target, not quiet)


@cli.group()
def audit() -> None:
    """The audit trail (PS3.15 audit messages, hash-chained in the index)."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the hash chain of the audit trail: exit 1 and name the first broken record."""
    from hounsfield.cli.audit import run_verify

    run_verify(_settings(ctx))


@cli.command()
@click.argument("study_uid")
@click.option("--to", "target", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--deidentify",
    is_flag=True,
    required=True,
    help="De-identify (PS3.15 Annex E Basic Profile); required: the only export there is.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    type=click.Choice(list(DEID_OPTIONS)),
    help="An Annex E option (repeat): retain-uids, retain-full-dates, retain-modified-dates...",
)
@click.option(
    "--allow-burned-in",
    is_flag=True,
    help="Export objects whose Burned In Annotation is YES too (their pixels are not cleaned).",
)
@click.option("--partition", default=None, help="Partition of the study (default: the default).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def export(
    ctx: click.Context,
    study_uid: str,
    target: Path,
    deidentify: bool,
    options: tuple[str, ...],
    allow_burned_in: bool,
    partition: str | None,
    quiet: bool,
) -> None:
    """Export a study de-identified into a folder (STUDY/SERIES/SOP.dcm); exits 1 when some
    objects were refused for burned-in annotation."""
    from hounsfield.cli.export import export_deidentified

    if not deidentify:
        raise click.UsageError("only de-identified exports exist: add --deidentify")
    settings = _settings(ctx)
    sys.exit(
        export_deidentified(
            settings,
            partition or settings.default_partition,
            study_uid,
            target,
            list(options),
            allow_burned_in,
            not quiet,
        )
    )


def main() -> None:
    cli(prog_name="hounsfield")


_MODEL = click.option(
    "--patient-root",
    "patient_root",
    is_flag=True,
    help="Patient Root information model (default: Study Root).",
)


def _model(patient_root: bool) -> Model:
    from hounsfield.domain.qrmodel import Model

    return Model.PATIENT_ROOT if patient_root else Model.STUDY_ROOT


@cli.command()
@click.argument("target")
@click.pass_context
def echo(ctx: click.Context, target: str) -> None:
    """C-ECHO a remote AE: AET@HOST:PORT, or an AE title of the remote AE registry."""
    from hounsfield.cli.dimse import run_echo

    sys.exit(run_echo(_settings(ctx), target))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--to", "target", required=True, help="AET@HOST:PORT or a registered AE title.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def send(ctx: click.Context, paths: tuple[Path, ...], target: str, quiet: bool) -> None:
    """C-STORE DICOM files and folders (recursively) to a remote AE."""
    from hounsfield.cli.dimse import run_send

    sys.exit(run_send(_settings(ctx), list(paths), target, progress=not quiet))


@cli.command()
@click.option("--to", "target", required=True, help="AET@HOST:PORT or a registered AE title.")
@click.option(
    "-k", "keys", multiple=True, help="Keyword=value (or Keyword to return it); repeatable."
)
@_MODEL
@click.pass_context
def find(ctx: click.Context, target: str, keys: tuple[str, ...], patient_root: bool) -> None:
    """C-FIND on a remote AE; prints one DICOM JSON object per match."""
    from hounsfield.cli.dimse import run_find

    sys.exit(run_find(_settings(ctx), target, list(keys), _model(patient_root)))


@cli.command()
@click.argument("study_uid")
@click.option("--from", "source", required=True, help="AET@HOST:PORT or a registered AE title.")
@click.option("--to", "destination", required=True, help="AE title of the move destination.")
@_MODEL
@click.pass_context
def move(
    ctx: click.Context, study_uid: str, source: str, destination: str, patient_root: bool
) -> None:
    """C-MOVE a study on a remote AE to a destination AE (our own AE title fetches it here)."""
    from hounsfield.cli.dimse import run_move

    sys.exit(run_move(_settings(ctx), study_uid, source, destination, _model(patient_root)))


@cli.command()
@click.argument("study_uid")
@click.option("--from", "source", required=True, help="AET@HOST:PORT or a registered AE title.")
@_MODEL
@click.pass_context
def fetch(ctx: click.Context, study_uid: str, source: str, patient_root: bool) -> None:
    """Fetch a study from a remote AE into this archive: a C-MOVE whose destination is our own
    AE title (the remote must know our host and DIMSE port; `hounsfield serve` must run)."""
    from hounsfield.cli.dimse import run_move

    settings = _settings(ctx)
    sys.exit(run_move(settings, study_uid, source, settings.ae_title, _model(patient_root)))
