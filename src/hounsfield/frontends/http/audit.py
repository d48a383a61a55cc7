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

A viewer reads a study as hundreds of frame and rendered requests within a second or two.
PS3.15 A.5.3.7 describes the *completion* of transferring a set of instances of one patient,
not each HTTP exchange, so successful reads of one study by one requester within
`AuditService.transfer_window` seconds are one DICOM Instances Transferred message
(`ReadBursts`), timed when the last of them completed (its EventDateTime, A.5.3.7) and saying
how many requests it covers. Failed reads are recorded one by one, at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

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


@dataclass(slots=True)
class _Burst:
    requests: int
    completed: datetime


_BurstKey = tuple[Actor, str, tuple[str, ...]]


class ReadBursts:
    """Successful reads of one study by one requester, gathered for `window` seconds into
    one DICOM Instances Transferred message (PS3.15 A.5.3.7: the completion of a transfer).

    The first read of a burst opens it and schedules its message on the event loop; later
    reads only count. At most `limit` bursts are open at once (the oldest is written early
    past that), and `close` writes every open one, so nothing is lost at shutdown.
    """

    def __init__(self, audit: AuditService, window: float, limit: int = 10_000) -> None:
        self.audit = audit
        self.window = window
        self.limit = limit
        self._open: dict[_BurstKey, _Burst] = {}

    def add(self, actor: Actor, partition: str, studies: tuple[str, ...]) -> None:
        key = (actor, partition, studies)
        now = datetime.now(UTC)
        burst = self._open.get(key)
        if burst is not None:
            burst.requests += 1
            burst.completed = now
            return
        if len(self._open) >= self.limit:
            self._write(next(iter(self._open)))
        self._open[key] = _Burst(1, now)
        asyncio.get_running_loop().call_later(self.window, self._write, key)

    def close(self) -> None:
        for key in list(self._open):
            self._write(key)

    def _write(self, key: _BurstKey) -> None:
        burst = self._open.pop(key, None)
        if burst is None:
            return
        actor, partition, studies = key
        message = self.audit.transferred(actor, partition, list(studies), a.Outcome.SUCCESS)
        description = f"{burst.requests} HTTP requests" if burst.requests > 1 else ""
        self.audit.record(
            dataclasses.replace(message, time=burst.completed, outcome_description=description)
        )


def _transferred_studies(request: Request) -> list[str]:
    """The study a read is of: its path's, or WADO-URI's `studyUID` (PS3.18 9.1.2)."""
    if "study" in request.params:
        return [request.params["study"]]
    try:
        return [v for k, v in request.query_items() if k == "studyUID"][:1]
    except HttpError:
        return []  # the request was refused for its query already


class HttpAuditor:
    def __init__(self, audit: AuditService, default_partition: str) -> None:
        self.audit = audit
        self.default_partition = default_partition
        self.bursts = (
            ReadBursts(audit, audit.transfer_window) if audit.transfer_window > 0 else None
        )

    def close(self) -> None:
        """Write the reads still gathered (at shutdown)."""
        if self.bursts is not None:
            self.bursts.close()

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
        if (
            pending.kind is Kind.TRANSFER
            and outcome is a.Outcome.SUCCESS
            and self.bursts is not None
        ):
            studies = _transferred_studies(request)
            if studies:
                self.bursts.add(actor, pending.partition, tuple(studies))
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
            return audit.transferred(actor, partition, _transferred_studies(request), outcome)
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
