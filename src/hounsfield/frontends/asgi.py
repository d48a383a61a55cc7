"""The HTTP application: DICOMweb under /dicom-web, the admin API under /api.

Every request but the health probe is authenticated (when an authenticator is configured)
and authorized by the route's requirement (frontends/http/security.py) before its handler
runs; without an authenticator, which the server allows on loopback only unless told
otherwise (bootstrap.check_exposure), the caller is the anonymous operator.

Errors become small JSON documents with the status chosen by the handler (PS3.18 8.5); anything
unexpected is a 500 whose details go to the log, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hounsfield import __version__
from hounsfield.domain.errors import InvalidQueryError, NotFoundError
from hounsfield.domain.security import AuthenticationError, Permission, anonymous
from hounsfield.frontends.admin.api import add_admin_routes
from hounsfield.frontends.dicomweb.context import Context, DicomWebOptions
from hounsfield.frontends.dicomweb.routes import add_dicomweb_routes
from hounsfield.frontends.http.audit import HttpAuditor, Pending
from hounsfield.frontends.http.core import (
    HttpError,
    Receive,
    Request,
    Response,
    Router,
    Scope,
    Send,
    json_response,
)
from hounsfield.frontends.http.protection import RateLimiter, security_headers
from hounsfield.frontends.http.security import (
    PUBLIC_ROUTES,
    authorize,
    granted_study,
    requirement,
)
from hounsfield.ports.auth import Authenticator
from hounsfield.services.container import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpOptions:
    dicomweb: DicomWebOptions
    cors_origins: tuple[str, ...] = ()
    #: Served over TLS: adds HSTS (frontends/http/protection.py).
    https: bool = False
    #: Requests per minute and principal (or client address); 0 = no limit.
    rate_limit_per_minute: int = 0


def _capabilities() -> dict[str, object]:
    """A short machine-readable summary; docs/conformance.md is the full statement."""
    return {
        "service": "Hounsfield DICOMweb",
        "version": __version__,
        "conformance": "docs/conformance.md",
        "transactions": {
            "STOW-RS": ["POST /studies", "POST /studies/{study}"],
            "QIDO-RS": [
                "/studies",
                "/series",
                "/instances",
                "/studies/{study}/series",
                "/studies/{study}/instances",
                "/studies/{study}/series/{series}/instances",
            ],
            "WADO-RS": [
                "/studies/{study}[/series/{series}[/instances/{sop}]]",
                ".../metadata",
                ".../instances/{sop}/frames/{frames}",
                ".../instances/{sop}/bulkdata/{path}",
            ],
            "DELETE": ["/studies/{study}[/series/{series}[/instances/{sop}]]"],
        },
        "partitions": "/dicom-web/partitions/{name}/...",
    }


class HttpApp:
    """ASGI 3 application."""

    def __init__(
        self,
        services: Services,
        options: HttpOptions,
        is_ready: Callable[[], bool] = lambda: True,
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        on_shutdown: Callable[[], None] = lambda: None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.options = options
        self.authenticator = authenticator
        self.grants = services.grants
        self.limiter = (
            RateLimiter(options.rate_limit_per_minute) if options.rate_limit_per_minute else None
        )
        self._anonymous = anonymous(options.dicomweb.default_partition)
        self._background = background
        self._on_shutdown = on_shutdown
        self._tasks: list[asyncio.Task[None]] = []
        self.router = Router()
        #: One audit message per audited request (frontends/http/audit.py).
        self._auditor = (
            HttpAuditor(services.audit, options.dicomweb.default_partition)
            if services.audit is not None
            else None
        )
        ctx = Context(services, options.dicomweb)
        add_dicomweb_routes(self.router, ctx)
        add_admin_routes(self.router, services, is_ready)

        async def capabilities(request: Request) -> Response:
            return json_response(_capabilities())

        self.router.add("/dicom-web", ("GET",), capabilities)

    def _cors_headers(self, request: Request) -> list[tuple[str, str]]:
        origin = request.headers.get("origin")
        allowed = self.options.cors_origins
        if not origin or not allowed:
            return []
        if "*" in allowed:
            value = "*"
        elif origin in allowed:
            value = origin
        else:
            return []
        return [
            ("access-control-allow-origin", value),
            (
                "access-control-expose-headers",
                "Warning, Content-Location, Content-Type, Content-Length",
            ),
            ("vary", "Origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        cors = self._cors_headers(request)
        if request.method == "OPTIONS" and cors:
            preflight = [
                *cors,
                ("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS"),
                (
                    "access-control-allow-headers",
                    request.headers.get("access-control-request-headers", "*"),
                ),
                ("access-control-max-age", "600"),
            ]
            await Response(204, b"", preflight)(send)
            return
        pending: Pending | None = None
        try:
            handler, params, template = self.router.resolve_route(request.method, request.path)
            request.params = params
            await self._authenticate(request, template)
            if self.limiter is not None and template not in PUBLIC_ROUTES:
                self.limiter.check(_who(request))
            if self._auditor is not None:
                pending = await self._auditor.before(request)
            response = await handler(request)
        except HttpError as exc:
            response = _error(exc.status, exc.message, exc.headers)
        except InvalidQueryError as exc:
            response = _error(400, str(exc))
        except NotFoundError as exc:
            response = _error(404, str(exc))
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = _error(500, "internal error; see the server log")
        if self._auditor is not None:
            try:
                self._auditor.after(request, response.status, pending)
            except Exception:
                log.exception("could not audit %s %s", request.method, request.path)
        await response(
            send,
            [*cors, *security_headers(response, https=self.options.https)],
            head=request.method == "HEAD",
        )

    async def _authenticate(self, request: Request, template: str) -> None:
        """Set `request.principal`, or raise 401 (no or bad credentials, RFC 6750 3) or 403
        (not allowed)."""
        need = requirement(request.method, template)
        if need is None:
            return
        if self.authenticator is None:
            request.principal = self._anonymous
            return
        try:
            principal = await asyncio.to_thread(self.authenticator.authenticate, request.headers)
        except AuthenticationError as exc:
            client = request.scope.get("client") or ("?", 0)
            log.info("authentication failed from %s: %s", client[0], exc)
            # RFC 6750 3: error_description is printable ASCII without '"' or '\\'; the
            # reason may quote the token's own header (a kid), so nothing else gets through.
            reason = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in str(exc))[
                :200
            ]
            challenge = (
                f'Bearer realm="hounsfield", error="invalid_token", error_description="{reason}"'
            )
            raise HttpError(
                401, f"authentication failed: {exc}", [("www-authenticate", challenge)]
            ) from None
        if principal is None:
            raise HttpError(
                401,
                "authentication required: a bearer token or an API key",
                [("www-authenticate", 'Bearer realm="hounsfield"')],
            )
        request.principal = principal  # before authorizing: a refusal is audited as theirs
        if self.grants is not None and (study := granted_study(request, template)) is not None:
            partition = request.params.get("partition")
            if not (
                principal.can(Permission.READ)
                and principal.may_use(partition or principal.default_partition)
            ):
                granted = await asyncio.to_thread(
                    self.grants.principal_for, principal, study, partition
                )
                if granted is not None:
                    request.principal = granted
                    return
        authorize(principal, need)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = [asyncio.create_task(job()) for job in self._background]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                if self._auditor is not None:
                    self._auditor.close()
                self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _who(request: Request) -> str:
    """The rate limit's key: the principal, or the client address for anonymous requests."""
    principal = request.principal
    if principal is not None and principal.method != "anonymous":
        return f"principal:{principal.subject}"
    client = request.scope.get("client") or ("?", 0)
    return f"address:{client[0]}"


def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    body = orjson.dumps({"error": message, "status": status})
    return Response(status, body, [("content-type", "application/json"), *(headers or [])])
