"""The admin REST API under /api (JSON): health, remote AE registry, worklist, jobs and
forwarding rules, statistics, OpenAPI."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from hounsfield import __version__
from hounsfield.domain.identifiers import is_valid_partition
from hounsfield.frontends.admin.audit import add_audit_routes
from hounsfield.frontends.admin.deidentify import add_deidentify_routes
from hounsfield.frontends.admin.grants import add_grant_routes
from hounsfield.frontends.admin.jobs import add_job_routes
from hounsfield.frontends.admin.openapi import openapi_document
from hounsfield.frontends.admin.params import json_fields
from hounsfield.frontends.admin.patients import add_patient_routes
from hounsfield.frontends.admin.worklist import add_mpps_routes, add_worklist_routes
from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.ports.index import RemoteAE
from hounsfield.services.container import Services


def _aet(request: Request) -> str:
    """PS3.5 6.2 AE: 1-16 characters of the default repertoire, no backslash, not all spaces."""
    aet = request.params["aet"]
    if not 1 <= len(aet) <= 16 or "\\" in aet or not aet.strip() or not aet.isascii():
        raise HttpError(400, f"{aet!r} is not a valid AE title (1-16 characters, PS3.5 6.2)")
    return aet


def _remote_ae_from(aet: str, body: bytes) -> RemoteAE:
    data = json_fields(body, {"host", "port", "tls", "partition", "description"})
    host, port = data.get("host"), data.get("port")
    if not isinstance(host, str) or not host:
        raise HttpError(400, "'host' must be a non-empty string")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise HttpError(400, "'port' must be an integer between 1 and 65535")
    tls = data.get("tls", False)
    partition = data.get("partition", "default")
    description = data.get("description", "")
    if not isinstance(tls, bool):
        raise HttpError(400, "'tls' must be a boolean")
    if not isinstance(partition, str) or not is_valid_partition(partition):
        raise HttpError(400, "'partition' must be a valid partition name")
    if not isinstance(description, str):
        raise HttpError(400, "'description' must be a string")
    return RemoteAE(aet, host, port, partition, tls, description)


def add_admin_routes(router: Router, services: Services, is_ready: Any) -> None:
    admin = services.admin

    @router.route("/api/health", "GET")
    async def health(request: Request) -> Response:
        if not is_ready():
            return json_response({"status": "starting"}, 503)
        return json_response({"status": "ok", "version": __version__})

    @router.route("/api/remote-aes", "GET")
    async def list_aes(request: Request) -> Response:
        aes = await asyncio.to_thread(admin.list_remote_aes)
        return json_response([asdict(ae) for ae in aes])

    @router.route("/api/remote-aes/{aet}", "GET")
    async def get_ae(request: Request) -> Response:
        aet = _aet(request)
        ae = await asyncio.to_thread(admin.get_remote_ae, aet)
        if ae is None:
            raise HttpError(404, f"no remote AE {aet!r}")
        return json_response(asdict(ae))

    @router.route("/api/remote-aes/{aet}", "PUT")
    async def put_ae(request: Request) -> Response:
        ae = _remote_ae_from(_aet(request), await request.body(1 << 16))
        created = await asyncio.to_thread(admin.put_remote_ae, ae)
        return json_response(asdict(ae), 201 if created else 200)

    @router.route("/api/remote-aes/{aet}", "DELETE")
    async def delete_ae(request: Request) -> Response:
        aet = _aet(request)
        if not await asyncio.to_thread(admin.delete_remote_ae, aet):
            raise HttpError(404, f"no remote AE {aet!r}")
        return Response(204)

    add_worklist_routes(router, services)
    add_mpps_routes(router, services)
    add_job_routes(router, services)
    add_grant_routes(router, services)
    add_patient_routes(router, services)
    add_audit_routes(router, services)
    add_deidentify_routes(router, services)

    @router.route("/api/stats", "GET")
    async def stats(request: Request) -> Response:
        rows = await asyncio.to_thread(admin.stats)
        totals = {
            key: sum(getattr(row, key) for row in rows)
            for key in ("patients", "studies", "series", "instances", "bytes")
        }
        return json_response({"partitions": [asdict(r) for r in rows], "total": totals})

    @router.route("/api/openapi.json", "GET")
    async def openapi(request: Request) -> Response:
        return json_response(openapi_document(__version__))
