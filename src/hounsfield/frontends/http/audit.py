"""The audit hook of the HTTP front end: one PS3.15 A.5.3 message per audited request.

The application calls `before` once the route is resolved and `after` with the response
status; handlers add what only they know to `request.scope` under `STUDIES_KEY` (STOW-RS: the
studies stored and their SOP classes). Which message a request gives is decided by its method
and path (`classify`): STOW-RS is Instances Transferred (create), QIDO-RS and the change feed
Query, WADO-RS/WADO-URI and rendered resources Instances Transferred (read), DELETE Instances
Accessed (delete), a change through the admin API a Security Alert, reading /api/audit Audit
Log Used, any 401 a failed User Authentication and any 403 a Security Alert.

Who: the principal that authentication put on the request (its subject), else the client
address.
Nothing here logs PHI: messages go to the audit trail only.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hounsfield.domain import audit as a
from hounsfield.frontends.http.core import HttpError, Request
from hounsfield.services.audit import Actor, AuditService, outcome_of_http

#: Where STOW-RS leaves {study UID: {SOP class UID: count}} of what it stored.
STUDIES_KEY = "hounsfield.audit.studies"

_DICOMWEB = re.compile(r"^/dicom-web(?:/partitions/[^/]+)?(?P<rest>/.*)?$")
_QUERY = re.compile(
    r"^/(?:studies|series|instances|changefeed(?:/latest)?"
    r"|studies/[^/]+/(?:series|instances)|studies/[^/]+/series/[^/]+/instances)/?$"
)
_STORE = re.compile(r"^/studies(?:/[^/]+)?/?$")


class Kind(enum.Enum):
    STORED = "stored"
    QUERY = "query"
    TRANSFER = "transfer"
    DELETE = "delete"
    ADMIN = "admin"
    AUDIT_READ = "audit-read"


def classify(method: str, path: str) -> Kind | None:
    """Which audit message a request gives (None: not audited, e.g. health checks)."""
    if path == "/wado" or path.startswith("/wado?"):
        return Kind.TRANSFER if method in ("GET", "HEAD") else None
    match = _DICOMWEB.match(path)
    if match is not None:
        rest = match["rest"] or "/"
        if method == "POST" and _STORE.match(rest):
            return Kind.STORED
        if method == "DELETE":
            return Kind.DELETE
        if method in ("GET", "HEAD"):
            if _QUERY.match(rest):
                return Kind.QUERY
            if rest.startswith(("/studies/", "/wado")):
                return Kind.TRANSFER
        return None
    if path.startswith("/api/"):
        if path.rstrip("/") == "/api/audit":
            return Kind.AUDIT_READ if method == "GET" else None
        if method in ("POST", "PUT", "DELETE", "PATCH"):
            return Kind.ADMIN
    return None


def _admin_alert_type(path: str) -> a.Code:
    if path.startswith("/api/remote-aes"):
        return a.NETWORK_CONFIGURATION
    if path.startswith(("/api/forward-rules", "/api/worklist", "/api/mpps")):
        return a.SOFTWARE_CONFIGURATION
    return a.USE_OF_RESTRICTED_FUNCTION


def actor_of(request: Request) -> Actor:
    """The authenticated principal (its subject, and how it authenticated as the alternative
    user id), else the client address."""
    client = request.scope.get("client") or ("", 0)
    address = str(client[0]) if client else ""
    principal = request.principal
    if principal is None or principal.method == "anonymous":
        return Actor(user_id=address, address=address)
    return Actor(user_id=principal.subject, address=address, alternative_user_id=principal.method)


@dataclass(frozen=True, slots=True)
class Pending:
    kind: Kind
    partition: str
    patient_ids: tuple[str, ...] = ()


class HttpAuditor:
    def __init__(self, audit: AuditService, default_partition: str) -> None:
        self.audit = audit
        self.default_partition = default_partition

    async def before(self, request: Request) -> Pending | None:
        kind = classify(request.method, request.path.split("?", 1)[0])
        if kind is None:
            return None
        principal = request.principal
        default = principal.default_partition if principal is not None else ""
        partition = request.params.get("partition", default or self.default_partition)
        patients: tuple[str, ...] = ()
        if kind is Kind.DELETE and "study" in request.params:
            # The study is gone once the handler returns: name its patient now.
            found = await asyncio.to_thread(
                self.audit.patient_of, partition, request.params["study"]
            )
            patients = (found,) if found else ()
        return Pending(kind, partition, patients)

    def after(self, request: Request, status: int, pending: Pending | None) -> None:
        actor = actor_of(request)
        outcome = outcome_of_http(status)
        if status == 401:
            self.audit.record(
                self.audit.authentication(actor, a.Outcome.MINOR_FAILURE, "credentials refused")
            )
        elif status == 403:
            # An access violation is a Security Alert too (PS3.15 A.5.3.10 note 1, A.5.3.12).
            self.audit.record(
                self.audit.security_alert(
                    actor,
                    a.USE_OF_RESTRICTED_FUNCTION,
                    f"{request.method} {request.path}: forbidden",
                    outcome=a.Outcome.MINOR_FAILURE,
                    subject=request.path,
                )
            )
        if pending is None:
            return
        message = self._message(request, pending, actor, outcome, status)
        if message is not None:
            self.audit.record(message)

    def _message(
        self, request: Request, pending: Pending, actor: Actor, outcome: a.Outcome, status: int
    ) -> a.AuditMessage | None:
        audit, partition, params = self.audit, pending.partition, request.params
        studies = [params["study"]] if "study" in params else []
        if pending.kind is Kind.STORED:
            stored: Mapping[str, Mapping[str, int]] = request.scope.get(STUDIES_KEY) or {
                s: {} for s in studies
            }
            return audit.instances_stored(actor, partition, stored, outcome, f"HTTP {status}")
        if pending.kind is Kind.QUERY:
            url = request.path + (
                "?" + request.query_string.decode("latin-1") if request.query_string else ""
            )
            return audit.query(actor, partition, url.encode(), request.path, outcome, uri=True)
        if pending.kind is Kind.TRANSFER:
            if not studies:
                try:
                    studies = [v for k, v in request.query_items() if k == "studyUID"][:1]
                except HttpError:
                    studies = []  # the request was refused for its query already
            return audit.transferred(actor, partition, studies, outcome)
        if pending.kind is Kind.DELETE:
            return audit.deleted(actor, partition, studies, outcome, pending.patient_ids)
        if pending.kind is Kind.AUDIT_READ:
            query = request.query_string.decode("latin-1")
            return audit.audit_log_used(
                actor, outcome, "/api/audit" + (f"?{query}" if query else "")
            )
        return audit.security_alert(
            actor,
            _admin_alert_type(request.path),
            f"{request.method} {request.path}: HTTP {status}",
            outcome=outcome,
            subject=request.path,
        )
