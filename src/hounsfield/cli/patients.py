"""`hounsfield patient erase|export`: one patient's data, erased everywhere or copied out."""

from __future__ import annotations

from pathlib import Path

import click

from hounsfield.cli.opened import opened_archive
from hounsfield.cli.progress import progress_bar
from hounsfield.config import Settings
from hounsfield.domain.errors import NotFoundError


def erase(settings: Settings, partition: str, patient_id: str, issuer: str | None) -> None:
    with opened_archive(settings) as archive:
        patients = archive.services.patients
        assert patients is not None
        try:
            report = patients.erase(partition, patient_id, issuer)
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"erased {len(report.studies)} studies, {report.instances} instances"
        f" ({report.cancelled_jobs} queued jobs cancelled, {report.cached_images} cached images)"
    )


def export(
    settings: Settings,
    partition: str,
    patient_id: str,
    issuer: str | None,
    target: Path,
    progress: bool,
) -> None:
    with opened_archive(settings) as archive:
        patients = archive.services.patients
        assert patients is not None
        try:
            studies = patients.studies_of(partition, patient_id, issuer)
            total = sum(len(archive.index.instances(partition, study)) for study in studies)
            with progress_bar("exporting", total, enabled=progress) as advance:
                report = patients.export(partition, patient_id, target, issuer, progress=advance)
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"exported {report.instances} instances of {report.studies} studies"
        f" ({report.bytes} bytes); manifest {report.manifest}"
    )
