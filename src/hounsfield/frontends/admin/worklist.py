"""Admin API for the modality worklist (`/api/worklist`, `/api/worklist/{id}`) and the
performed procedure steps (`/api/mpps`, `/api/mpps/{uid}`, read-only), as JSON.

An item is a DICOM JSON object (PS3.18 F.2) with the attributes of PS3.4 Table K.6-1; the
Modality Worklist C-FIND SCP answers with it. `?partition=` picks the partition (default:
"default"), as DIMSE associations see only their calling AE's partition.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.frontends.http.security import use_partition
from hounsfield.services.container import Services
from hounsfield.services.mpps import MppsService
from hounsfield.services.worklist import InvalidWorklistItemError, WorklistService


def _partition(request: Request) -> str:
    values = [v for k, v in request.query_items() if k == "partition"]
    return use_partition(request, values[-1] if values else None)


def _service(services: Services) -> WorklistService:
    if services.worklist is None:
        raise HttpError(503, "the worklist is not configured")
    return services.worklist


def add_worklist_routes(router: Router, services: Services) -> None:
    @router.route("/api/worklist", "GET")
    async def list_items(request: Request) -> Response:
        items = await asyncio.to_thread(_service(services).items, _partition(request))
        return json_response([{"id": item.item_id, "dataset": item.dataset} for item in items])

    @router.route("/api/worklist/{item}", "GET")
    async def get_item(request: Request) -> Response:
        item_id = request.params["item"]
        found = await asyncio.to_thread(_service(services).get, _partition(request), item_id)
        if found is None:
            raise HttpError(404, f"no worklist item {item_id!r}")
        return json_response(found.dataset)

    @router.route("/api/worklist/{item}", "PUT")
    async def put_item(request: Request) -> Response:
        item_id = request.params["item"]
        try:
            data: Any = orjson.loads(await request.body(1 << 20))
        except orjson.JSONDecodeError as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from exc
        worklist = _service(services)
        try:
            created = await asyncio.to_thread(worklist.put, _partition(request), item_id, data)
        except InvalidWorklistItemError as exc:
            raise HttpError(400, str(exc)) from exc
        return json_response(data, 201 if created else 200)

    @router.route("/api/worklist/{item}", "DELETE")
    async def delete_item(request: Request) -> Response:
        item_id = request.params["item"]
        if not await asyncio.to_thread(_service(services).delete, _partition(request), item_id):
            raise HttpError(404, f"no worklist item {item_id!r}")
        return Response(204)


def add_mpps_routes(router: Router, services: Services) -> None:
    """Read-only view of the performed procedure steps the modalities reported."""

    def mpps() -> MppsService:
        if services.mpps is None:
            raise HttpError(503, "MPPS is not configured")
        return services.mpps

    @router.route("/api/mpps", "GET")
    async def list_steps(request: Request) -> Response:
        items = await asyncio.to_thread(mpps().items, _partition(request))
        return json_response([{"id": item.item_id, "dataset": item.dataset} for item in items])

    @router.route("/api/mpps/{uid}", "GET")
    async def get_step(request: Request) -> Response:
        uid = request.params["uid"]
        found = await asyncio.to_thread(mpps().get, _partition(request), uid)
        if found is None:
            raise HttpError(404, f"no performed procedure step {uid!r}")
        return json_response(found.dataset)
