"""API keys (ports/auth.py, services/apikeys.py) on every index adapter: only a digest is
stored, a key verifies to its scope, and a wrong, revoked or expired key does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hounsfield.domain.security import AuthenticationError, Permission, Role
from hounsfield.ports.index import IndexStore
from hounsfield.services.apikeys import ApiKeyService


def test_create_verify_list_revoke(index: IndexStore) -> None:
    keys = ApiKeyService(index.api_keys, "default")
    key, text = keys.create("viewer app", "viewer", ["a", "b"])
    assert text.startswith(f"hfk_{key.key_id}_")
    secret = text.rsplit("_", 1)[1]
    found = index.api_keys.find(key.key_id)
    assert found is not None
    stored, digest = found
    assert secret not in digest and len(digest) == 64  # SHA-256 hex, not the secret
    assert stored.partitions == ("a", "b") and stored.role == "viewer"

    principal = keys.verify(text)
    assert principal.roles == frozenset({Role.VIEWER})
    assert principal.partitions == frozenset({"a", "b"}) and principal.default_partition == "a"
    assert principal.can(Permission.READ) and not principal.can(Permission.WRITE)

    with pytest.raises(AuthenticationError, match="wrong"):
        keys.verify(text[:-2] + ("AA" if not text.endswith("AA") else "BB"))
    with pytest.raises(AuthenticationError, match="wrong"):
        keys.verify("hfk_000000000000_" + secret)  # unknown id
    with pytest.raises(AuthenticationError, match="malformed"):
        keys.verify("hfk_short")

    assert [k.key_id for k in keys.list()] == [key.key_id]
    assert keys.revoke(key.key_id)
    assert not keys.revoke(key.key_id)  # already revoked
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.verify(text)
    listed = keys.list()
    assert listed[0].revoked_at is not None  # kept for the record


def test_expiry_and_scope_defaults(index: IndexStore) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [now]
    keys = ApiKeyService(index.api_keys, "main", clock=lambda: clock[0])
    key, text = keys.create("ci", "uploader", [], timedelta(days=1))
    assert key.partitions == ("main",)
    assert keys.verify(text).default_partition == "main"
    clock[0] = now + timedelta(days=1, seconds=1)
    with pytest.raises(AuthenticationError, match="expired"):
        keys.verify(text)
    _, all_text = keys.create("ops", "admin", ["*"])
    principal = keys.verify(all_text)
    assert principal.all_partitions and principal.may_use("anything")
    assert principal.default_partition == "main"
    with pytest.raises(ValueError, match="role"):
        keys.create("x", "superuser", [])
    with pytest.raises(ValueError, match="partition"):
        keys.create("x", "viewer", ["bad/name"])
