"""Who is asking, and what they may do: principals, roles, permissions and partitions.

A request is made by a `Principal`: the subject named by a verified bearer token (OIDC) or by
an API key, or the anonymous operator of an archive that listens on loopback only without
authentication. A principal has roles, each granting permissions (read, write, delete, admin,
audit), and the partitions (tenants, DESIGN.md key idea 6) it may use. Pure data: verifying
credentials is the job of the `Authenticator` port (ports/auth.py).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from hounsfield.domain.errors import HounsfieldError

#: In a partitions claim or an API key's scope: every partition, present and future.
ALL_PARTITIONS = "*"


class AuthenticationError(HounsfieldError):
    """Credentials were presented but are not valid (bad signature, expired, revoked...).

    The message is for the server log and the `error_description` of the 401: it names the
    check that failed, never a secret."""


class Permission(enum.StrEnum):
    READ = "read"  # QIDO, WADO, change feed: protected health information
    WRITE = "write"  # STOW
    DELETE = "delete"  # DELETE of studies, series, instances
    ADMIN = "admin"  # the admin API under /api
    AUDIT = "audit"  # the audit trail, which an auditor reads without reading images


class Role(enum.StrEnum):
    VIEWER = "viewer"
    UPLOADER = "uploader"
    ADMIN = "admin"
    AUDITOR = "auditor"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.UPLOADER: frozenset({Permission.READ, Permission.WRITE}),
    Role.ADMIN: frozenset(Permission),
    Role.AUDITOR: frozenset({Permission.AUDIT}),
}


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """The roles named in a claim; names are compared case-insensitively, and names that are
    not roles of this archive (an identity provider's other groups) are ignored."""
    known = {role.value: role for role in Role}
    return frozenset(known[v.strip().lower()] for v in values if v.strip().lower() in known)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `partitions` may contain ALL_PARTITIONS; `default_partition`
    is the one a URL without /partitions/{name} means for this caller."""

    subject: str
    roles: frozenset[Role]
    partitions: frozenset[str]
    default_partition: str
    method: str  # "oidc", "api-key" or "anonymous"

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS[role]
        return frozenset(granted)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def all_partitions(self) -> bool:
        return ALL_PARTITIONS in self.partitions

    def may_use(self, partition: str) -> bool:
        return self.all_partitions or partition in self.partitions


def scoped_partitions(values: Iterable[str], fallback: str) -> tuple[frozenset[str], str]:
    """The partitions of a claim or key scope, and the caller's default partition: the first
    one named, or `fallback` when the scope is every partition. An empty scope is the
    fallback partition alone, so a token without the claim never sees every tenant."""
    names = [v.strip() for v in values if v.strip()]
    if not names:
        return frozenset({fallback}), fallback
    concrete = [n for n in names if n != ALL_PARTITIONS]
    return frozenset(names), concrete[0] if concrete else fallback


def anonymous(default_partition: str) -> Principal:
    """The caller of an archive without authentication (allowed on loopback, or where the
    operator said so): everything, everywhere, as before authentication existed."""
    return Principal(
        "anonymous",
        frozenset({Role.ADMIN}),
        frozenset({ALL_PARTITIONS}),
        default_partition,
        "anonymous",
    )
