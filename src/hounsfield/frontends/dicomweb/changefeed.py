"""DICOMweb change feed, in the style of the Azure DICOM service (it is not part of PS3.18):

    GET {service}/changefeed?offset=0&limit=10&includemetadata=true
    GET {service}/changefeed/latest?includemetadata=true

`offset` is a Sequence: the feed lists entries with a greater Sequence, so a client pages by
passing the last Sequence it saw. Scoped to the request's partition like every other path
(/dicom-web/partitions/{p}/changefeed). Schema in docs/events.md.
"""

from __future__ import annotations

import asyncio

import orjson

from hounsfield.frontends.dicomweb.context import Context, instance_url, partition_of, service_root
from hounsfield.frontends.dicomweb.wado import _absolute_bulk_uris
from hounsfield.frontends.http.core import HttpError, Request, Response, json_response
from hounsfield.services.changefeed import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ChangeFeedEntry,
    ChangeFeedService,
)


def _service(ctx: Context) -> ChangeFeedService:
    if ctx.services.changefeed is None:
        raise HttpError(404, "the change feed is not enabled")
    return ctx.services.changefeed


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    values = [v for k, v in request.query_items() if k == name]
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise HttpError(400, f"{name} must be an integer, got {values[-1]!r}") from None
    if not low <= value <= high:
        raise HttpError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def _include_metadata(request: Request) -> bool:
    values = [v.lower() for k, v in request.query_items() if k == "includemetadata"]
    if not values:
        return True  # the Azure DICOM service's default
    if values[-1] not in ("true", "false"):
        raise HttpError(400, f"includemetadata must be true or false, got {values[-1]!r}")
    return values[-1] == "true"


def _json(entry: ChangeFeedEntry, root: str) -> dict[str, object]:
    metadata = None
    if entry.metadata is not None and entry.series_uid and entry.sop_uid:
        url = instance_url(root, entry.study_uid, entry.series_uid, entry.sop_uid)
        metadata = orjson.loads(_absolute_bulk_uris(entry.metadata, url))
    return entry.to_json(metadata)


async def feed(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    offset = _int(request, "offset", 0, 0, 2**63 - 1)
    limit = _int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    include = _include_metadata(request)
    entries = await asyncio.to_thread(
        _service(ctx).entries, partition, offset, limit, include_metadata=include
    )
    root = service_root(request, partition, ctx.options)
    return json_response([_json(e, root) for e in entries])


async def latest(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    include = _include_metadata(request)
    entry = await asyncio.to_thread(_service(ctx).latest, partition, include_metadata=include)
    if entry is None:
        return json_response({})
    return json_response(_json(entry, service_root(request, partition, ctx.options)))
