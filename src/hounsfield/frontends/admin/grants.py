"""Admin API for study-level grants (services/grants.py): share one study for reading.

- `POST /api/grants` `{"study": UID, "subject": principal, "expiresInSeconds": n,
  "partition": name}` → 201 with the grant; the subject is a token's `sub` or an API key's
  `api-key:<id>:<name>` as the audit trail shows it.
- `GET /api/grants?partition=&subject=&study=`, `DELETE /api/grants/{id}?partition=`.
A grant lets its subject read that study's DICOMweb resources (metadata, instances, frames,
rendered, its series and instances) in the grant's partition; nothing else.
"""

from __future__ import annotations

import asyncio

from hounsfield.frontends.admin.params import json_fields
from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.frontends.http.security import use_partition
from hounsfield.services.container import Services
from hounsfield.services.grants import GrantService, grant_document


def _service(services: Services) -> GrantService:
    if services.grants is None:
        raise HttpError(503, "grants are not configured")
    return services.grants


def _query(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query_items():
        if key not in ("partition", "subject", "study"):
            raise HttpError(400, f"unknown query parameter {key!r}")
        params[key] = value
    return params


def add_grant_routes(router: Router, services: Services) -> None:
    @router.route("/api/grants", "POST")
    async def create(request: Request) -> Response:
        data = json_fields(
            await request.body(1 << 16), {"study", "subject", "expiresInSeconds", "partition"}
        )
        study, subject = data.get("study"), data.get("subject")
        seconds = data.get("expiresInSeconds")
        if not isinstance(study, str) or not isinstance(subject, str):
            raise HttpError(400, "'study' and 'subject' are required strings")
        if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool)):
            raise HttpError(400, "'expiresInSeconds' must be an integer")
        partition = data.get("partition")
        if partition is not None and not isinstance(partition, str):
            raise HttpError(400, "'partition' must be a partition name")
        partition = use_partition(request, partition)
        creator = request.principal.subject if request.principal is not None else "anonymous"
        try:
            grant = await asyncio.to_thread(
                _service(services).create, partition, study, subject, creator, seconds
            )
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return json_response(grant_document(grant), 201)

    @router.route("/api/grants", "GET")
    async def listing(request: Request) -> Response:
        params = _query(request)
        partition = use_partition(request, params.get("partition"))
        found = await asyncio.to_thread(
            _service(services).find, partition, params.get("subject"), params.get("study")
        )
        return json_response([grant_document(g) for g in found])

    @router.route("/api/grants/{id}", "DELETE")
    async def revoke(request: Request) -> Response:
        try:
            grant_id = int(request.params["id"])
        except ValueError:
            raise HttpError(400, "a grant id is an integer") from None
        partition = use_partition(request, _query(request).get("partition"))
        if not await asyncio.to_thread(_service(services).revoke, grant_id, partition):
            raise HttpError(404, f"no grant {grant_id} in this partition")
        return Response(204)
