"""`hounsfield audit verify`: walk the hash chain of the audit trail (domain/audit.py)."""

from __future__ import annotations

import sys

import click

from hounsfield.config import Settings


def verify(settings: Settings) -> int:
    """0 when every record holds; 1 and the first broken record otherwise."""
    from hounsfield.bootstrap import open_audit, open_index

    index = open_index(settings.index_url, durable=settings.durable, migrate=settings.index_migrate)
    try:
        audit = open_audit(settings, index)
        if audit is None:
            click.echo("the audit trail is off (audit_enabled = false)", err=True)
            return 2
        state = audit.verify()
    finally:
        index.close()
    if state.breaks:
        first = state.breaks[0]
        click.echo(
            f"audit trail broken at record {first.seq}: {first.reason}"
            f" ({state.checked} record(s) before it verified)",
            err=True,
        )
        return 1
    click.echo(f"audit trail intact: {state.checked} record(s) verified")
    return 0


def run_verify(settings: Settings) -> None:
    sys.exit(verify(settings))
