"""`hounsfield export --deidentify`: a study de-identified (PS3.15 Annex E) into a folder."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from hounsfield.bootstrap import open_archive
from hounsfield.cli.progress import progress_bar
from hounsfield.config import Settings
from hounsfield.domain.deidentify import DeidentificationError, Options
from hounsfield.domain.errors import NotFoundError
from hounsfield.services.audit import Actor


def export_deidentified(
    settings: Settings,
    partition: str,
    study_uid: str,
    target: Path,
    options: list[str],
    allow_burned_in: bool,
    progress: bool,
) -> int:
    try:
        chosen = Options.of(options, allow_burned_in=allow_burned_in)
    except DeidentificationError as exc:
        raise click.UsageError(str(exc)) from None
    archive = open_archive(settings)
    try:
        service = archive.services.deidentify
        assert service is not None
        try:
            total = service.count(partition, study_uid)
            with progress_bar("de-identifying", total, enabled=progress) as advance:
                report = service.export(
                    partition,
                    study_uid,
                    target,
                    chosen,
                    actor=Actor(getpass.getuser(), "localhost"),
                    progress=advance,
                )
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        archive.close()
    click.echo(
        f"exported {report.instances} de-identified instances as study {report.study_uid}"
        f" to {report.target}"
        + (f"; refused {report.refused} with burned-in annotation" if report.refused else "")
    )
    return 1 if report.refused else 0
