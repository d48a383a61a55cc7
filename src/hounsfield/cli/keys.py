"""`hounsfield keys create|list|revoke`: API keys in the index database.

The commands work on the index directly, so keys can be made before the first start and
revoked while servers run: a server checks every request's key against the index, so a
revocation takes effect on the next request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import click
import orjson

from hounsfield.bootstrap import open_index
from hounsfield.config import ConfigError, Settings
from hounsfield.ports.auth import ApiKey
from hounsfield.services.apikeys import ApiKeyService


@contextmanager
def _service(settings: Settings) -> Iterator[ApiKeyService]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        index = open_index(
            settings.index_url, durable=settings.durable, migrate=settings.index_migrate
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield ApiKeyService(index.api_keys, settings.default_partition)
    finally:
        index.close()


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def key_document(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "role": key.role,
        "partitions": list(key.partitions),
        "created_at": _when(key.created_at),
        "expires_at": _when(key.expires_at),
        "revoked_at": _when(key.revoked_at),
    }


def create_key(
    settings: Settings,
    name: str,
    role: str,
    partitions: Sequence[str],
    expires_days: int | None,
    as_json: bool,
) -> None:
    expires = None if expires_days is None else timedelta(days=expires_days)
    with _service(settings) as keys:
        try:
            key, text = keys.create(name, role, partitions, expires)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(orjson.dumps({**key_document(key), "key": text}).decode())
        return
    click.echo(
        f"created API key {key.key_id} ({key.name}): role {key.role}, partitions "
        f"{', '.join(key.partitions)}; it is shown once, store it now:",
        err=True,
    )
    click.echo(text)


def list_keys(settings: Settings, as_json: bool) -> None:
    with _service(settings) as keys:
        found = keys.list()
    if as_json:
        click.echo(orjson.dumps([key_document(k) for k in found]).decode())
        return
    click.echo(f"{'KEY ID':<12}  {'ROLE':<8}  {'STATE':<8}  {'PARTITIONS':<24}  NAME")
    for key in found:
        state = "revoked" if key.revoked_at is not None else "active"
        if key.expires_at is not None and key.revoked_at is None:
            state = "expires" if key.expires_at > datetime.now(key.expires_at.tzinfo) else "expired"
        scope = ",".join(key.partitions)
        click.echo(f"{key.key_id:<12}  {key.role:<8}  {state:<8}  {scope:<24}  {key.name}")


def revoke_key(settings: Settings, key_id: str) -> None:
    with _service(settings) as keys:
        if not keys.revoke(key_id):
            raise click.ClickException(f"no active API key {key_id!r}")
    click.echo(f"revoked API key {key_id}")
