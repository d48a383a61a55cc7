"""The authentication ports: who is making a request, and where API keys are kept.

An `Authenticator` turns a request's headers into a `Principal` (domain/security.py). It
answers None when the request carries no credentials of its kind, so several authenticators
can be tried in turn (bearer JWT, API key), and raises `AuthenticationError` when it carries
credentials of its kind that are not valid: a bad token is never mistaken for no token.
Implementations may block (a JWKS fetch, an index read): front ends call them off the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hounsfield.domain.security import Principal


class Authenticator(Protocol):
    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        """`headers` have lower-case names (as HTTP/2 and ASGI spell them)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's public part and scope. The secret itself is never stored: only its
    SHA-256 digest, which the store keeps beside this record."""

    key_id: str
    name: str
    role: str
    partitions: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyStore(Protocol):
    def add(self, key: ApiKey, secret_sha256: str) -> None:
        """Store a new key; its key_id is unique (random)."""
        ...

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key and its secret's digest (hex), revoked or not; None if unknown."""
        ...

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included (they stay for the record)."""
        ...

    def revoke(self, key_id: str, when: datetime) -> bool:
        """Mark a key revoked; False when unknown or already revoked."""
        ...
