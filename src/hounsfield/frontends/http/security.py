"""Authorization of HTTP requests: the permission each route needs, and tenant scoping.

Every route but `/api/health` needs an authenticated principal (ports/auth.py). The policy is
one function of the method and the route template, so a new route is covered the moment it
is registered, and an unforeseen one falls to the strictest rule (admin, every partition).

Tenant isolation: a principal uses only its partitions. A request naming another partition is
answered 404, as for a resource that does not exist, so that a tenant cannot learn which other
partitions exist or what they hold; a request naming none uses the principal's default.
"""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.domain.identifiers import is_valid_partition
from hounsfield.domain.security import Permission, Principal
from hounsfield.frontends.http.core import HttpError, Request

#: Answered without credentials: load balancers and orchestrators probe it.
PUBLIC_ROUTES = frozenset({"/api/health"})
#: Admin routes that act on one partition, named by the request (`?partition=` or the body);
#: their handlers check it with `use_partition`. Other admin routes span every partition.
_PARTITION_ADMIN = (
    "/api/grants",
    "/api/worklist",
    "/api/mpps",
    "/api/forward",
    "/api/fetch",
    "/api/patients",
)
#: Non-PHI descriptions of the service, open to any authenticated principal.
_DESCRIPTIONS = frozenset({"/dicom-web", "/api/openapi.json"})


@dataclass(frozen=True, slots=True)
class Requirement:
    """`permission` None: any authenticated principal; `every_partition`: the route shows
    or changes data of all partitions (remote AEs, jobs, statistics, forwarding rules)."""

    permission: Permission | None
    every_partition: bool = False


def requirement(method: str, template: str) -> Requirement | None:
    """What a request to a route needs; None for public routes."""
    if template in PUBLIC_ROUTES:
        return None
    if template in _DESCRIPTIONS:
        return Requirement(None)
    if template.startswith("/api/audit"):
        return Requirement(Permission.AUDIT)
    if template.startswith(_PARTITION_ADMIN) and not template.startswith("/api/forward-rules"):
        return Requirement(Permission.ADMIN)
    if template.startswith(("/dicom-web/", "/wado")):
        if method == "DELETE":
            return Requirement(Permission.DELETE)
        if method in ("GET", "HEAD"):
            return Requirement(Permission.READ)
        return Requirement(Permission.WRITE)
    return Requirement(Permission.ADMIN, every_partition=True)


def granted_study(request: Request, template: str) -> str | None:
    """The study a request reads when a study-level grant could allow it: a GET or HEAD of a
    DICOMweb resource at or below /studies/{study} (metadata, instances, frames, rendered,
    the series and instances of the study); None for every other request."""
    if request.method not in ("GET", "HEAD") or not template.startswith("/dicom-web"):
        return None
    if "/studies/{study}" not in template:
        return None
    study = request.params.get("study")
    return study if study else None


#: RFC 6750 3.1: the credentials are valid but do not grant what the request needs.
_INSUFFICIENT = [("www-authenticate", 'Bearer realm="hounsfield", error="insufficient_scope"')]


def authorize(principal: Principal, need: Requirement) -> None:
    """403 when the principal lacks the permission or the breadth the route needs."""
    if need.permission is not None and not principal.can(need.permission):
        roles = ", ".join(sorted(principal.roles)) or "none"
        raise HttpError(
            403,
            f"forbidden: this needs the {need.permission} permission (roles: {roles})",
            _INSUFFICIENT,
        )
    if need.every_partition and not principal.all_partitions:
        raise HttpError(403, "forbidden: this route spans every partition", _INSUFFICIENT)


def use_partition(request: Request, name: str | None, fallback: str = "default") -> str:
    """The partition a request acts on: `name` if given, else the principal's default (or
    `fallback` before authentication). 400 for an invalid name, 404 for one the principal
    may not use (the answer does not depend on whether that partition exists)."""
    principal = request.principal
    if name is None:
        name = principal.default_partition if principal is not None else fallback
    if not is_valid_partition(name):
        raise HttpError(400, f"invalid partition name {name!r}")
    if principal is not None and not principal.may_use(name):
        raise HttpError(404, f"no resource at {request.path}")
    return name
