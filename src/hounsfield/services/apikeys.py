"""API keys: created, listed, revoked, and checked when a client presents one.

A key reads `hfk_<key id>_<secret>`: the prefix lets secret scanners and log filters
recognise it, the key id (48 random bits, public) finds its row, and the secret (256 random
bits, from `secrets`) is stored only as its SHA-256 digest. A digest of a high-entropy secret
needs no salt or slow hash: nothing can be guessed from it. Digests are compared in constant
time (`hmac.compare_digest`), so response times do not reveal how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from hounsfield.domain.identifiers import is_valid_partition
from hounsfield.domain.security import (
    ALL_PARTITIONS,
    AuthenticationError,
    Principal,
    Role,
    scoped_partitions,
)
from hounsfield.ports.auth import ApiKey, ApiKeyStore

PREFIX = "hfk_"
_KEY_ID_BYTES = 6
_SECRET_BYTES = 32


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a string shaped like a key, else None."""
    if not presented.startswith(PREFIX):
        return None
    key_id, sep, secret = presented[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 2 * _KEY_ID_BYTES or not secret:
        return None
    return key_id, secret


class ApiKeyService:
    def __init__(
        self,
        store: ApiKeyStore,
        default_partition: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.default_partition = default_partition
        self._clock = clock

    def create(
        self,
        name: str,
        role: str,
        partitions: Sequence[str],
        expires_in: timedelta | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its full text, which is shown once and never again."""
        if role not in {r.value for r in Role}:
            raise ValueError(f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})")
        scope = tuple(partitions) or (self.default_partition,)
        for partition in scope:
            if partition != ALL_PARTITIONS and not is_valid_partition(partition):
                raise ValueError(f"{partition!r} is not a valid partition name")
        if not name.strip():
            raise ValueError("a key needs a name (who or what uses it)")
        now = self._clock()
        key_id = secrets.token_hex(_KEY_ID_BYTES)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        key = ApiKey(
            key_id=key_id,
            name=name.strip(),
            role=role,
            partitions=scope,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        self.store.add(key, _digest(secret))
        return key, f"{PREFIX}{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        return self.store.list()

    def revoke(self, key_id: str) -> bool:
        return self.store.revoke(key_id, self._clock())

    def verify(self, presented: str) -> Principal:
        """The principal of a presented key; AuthenticationError when it is malformed,
        unknown, wrong, revoked or expired (the message says which, never the secret)."""
        parts = split_key(presented)
        if parts is None:
            raise AuthenticationError("malformed API key")
        key_id, secret = parts
        found = self.store.find(key_id)
        # Hash and compare even for an unknown id, so the answer takes the same time.
        expected = found[1] if found is not None else _digest(secrets.token_hex(8))
        if not hmac.compare_digest(_digest(secret), expected) or found is None:
            raise AuthenticationError("unknown or wrong API key")
        key = found[0]
        now = self._clock()
        if key.revoked_at is not None:
            raise AuthenticationError(f"API key {key_id} is revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError(f"API key {key_id} has expired")
        partitions, default = scoped_partitions(key.partitions, self.default_partition)
        return Principal(
            subject=f"api-key:{key_id}:{key.name}",
            roles=frozenset({Role(key.role)}),
            partitions=partitions,
            default_partition=default,
            method="api-key",
        )
