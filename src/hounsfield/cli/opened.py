"""The archive opened for a one-shot CLI command, closed afterwards; a configuration or
connection problem becomes a one-line error instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from hounsfield.bootstrap import Archive, open_archive
from hounsfield.config import ConfigError, Settings


@contextmanager
def opened_archive(settings: Settings) -> Iterator[Archive]:
    try:
        archive = open_archive(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # an unreachable database or store: say so in one line
        raise click.ClickException(f"cannot open the archive: {exc}") from exc
    try:
        yield archive
    finally:
        archive.close()
