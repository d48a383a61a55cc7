"""QIDO-RS: the Search transaction (PS3.18 10.6) at study, series and instance level.

Parameters become the shared query AST (`domain.qido.parse_qido`); the index answers through the
reference-matcher semantics; this module only picks the attributes to return
(PS3.18 10.6.3.3: the level's defaults, the matching keys, and `includefield`), adds RetrieveURL,
and encodes the result as application/dicom+json or multipart/related application/dicom+xml.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from hounsfield.domain.errors import InvalidQueryError
from hounsfield.domain.levels import (
    RETRIEVE_URL,
    SERIES_INSTANCE_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    default_return_tags,
)
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.qido import parse_qido
from hounsfield.domain.query import Query
from hounsfield.frontends.dicomweb.context import (
    Context,
    instance_url,
    partition_of,
    series_url,
    service_root,
    study_url,
    uid_param,
)
from hounsfield.frontends.dicomweb.dicomxml import to_xml
from hounsfield.frontends.http.core import HttpError, Request, Response
from hounsfield.frontends.http.mediatypes import parse_accept
from hounsfield.frontends.http.multipart import closing, new_boundary, part_header

DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"

_LEVEL_UIDS = {
    Level.STUDY: (STUDY_INSTANCE_UID,),
    Level.SERIES: (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID),
    Level.IMAGE: (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID),
}


def _negotiate(request: Request) -> str:
    """PS3.18 10.6.1.2 / 8.7.8: JSON by default; XML as multipart/related."""
    for media in parse_accept(request.headers.get("accept")):
        if media.type in ("application/dicom+json", "application/json") or media.type in (
            "*/*",
            "application/*",
        ):
            return DICOM_JSON
        if media.type == "multipart/related" and media.params.get("type", DICOM_XML) == DICOM_XML:
            return DICOM_XML
        if media.type == DICOM_XML:
            return DICOM_XML
    raise HttpError(
        406,
        "QIDO-RS responses are application/dicom+json or "
        'multipart/related; type="application/dicom+xml"',
    )


def _scope(request: Request) -> dict[str, str]:
    scope: dict[str, str] = {}
    if "study" in request.params:
        scope[STUDY_INSTANCE_UID] = uid_param(request, "study")
    if "series" in request.params:
        scope[SERIES_INSTANCE_UID] = uid_param(request, "series")
    return scope


def _returned_tags(query: Query) -> list[str] | None:
    """The attributes each result carries, in tag order (PS3.18 8.3.4.3: the defaults of the
    level, the matching keys and `includefield`); None for `includefield=all`."""
    if query.include == "all":
        return None
    wanted = set(default_return_tags(query.level))
    wanted.update(_LEVEL_UIDS.get(query.level, ()))
    wanted.update(key.tag for key in query.keys)
    wanted.update(query.include)
    return sorted(wanted)


def _select(row: DicomJson, tags: list[str] | None) -> DicomJson:
    if tags is None:
        return dict(row)
    return {tag: row[tag] for tag in tags if tag in row}


def _retrieve_url(row: DicomJson, level: Level, root: str) -> str | None:
    def uid(tag: str) -> str | None:
        values = row.get(tag, {}).get("Value")
        return str(values[0]) if values else None

    study, series, sop = uid(STUDY_INSTANCE_UID), uid(SERIES_INSTANCE_UID), uid(SOP_INSTANCE_UID)
    if study is None:
        return None
    if level is Level.STUDY:
        return study_url(root, study)
    if series is None:
        return None
    if level is Level.SERIES:
        return series_url(root, study, series)
    return instance_url(root, study, series, sop) if sop else None


async def search(request: Request, ctx: Context, level: Level) -> Response:
    partition = partition_of(request, ctx.options)
    media = _negotiate(request)
    try:
        query = parse_qido(request.query_items(), level, scope=_scope(request), partition=partition)
    except InvalidQueryError as exc:
        raise HttpError(400, str(exc)) from exc
    page, capped = await asyncio.to_thread(ctx.services.query.search, query)
    warnings = [f'299 hounsfield "{w}"' for w in query.warnings]
    if page.more:
        note = "There are additional results that can be requested"
        if capped:
            note += f" (at most {ctx.services.query.max_limit} results per response)"
        warnings.append(f'299 hounsfield "{note}"')
    headers = [("warning", w.replace("\n", " ")) for w in warnings]
    if not page.rows:
        return Response(204, b"", headers)
    root = service_root(request, partition, ctx.options)
    results: list[DicomJson] = []
    tags = _returned_tags(query)
    for row in page.rows:
        selected = _select(row, tags)
        url = _retrieve_url(row, level, root)
        if url is not None:
            selected[RETRIEVE_URL] = {"vr": "UR", "Value": [url]}
        results.append(selected)
    if media == DICOM_JSON:
        return Response(200, orjson.dumps(results), [("content-type", DICOM_JSON), *headers])
    return _xml_multipart(results, headers)


def _xml_multipart(results: list[dict[str, Any]], headers: list[tuple[str, str]]) -> Response:
    boundary = new_boundary()
    body = bytearray()
    for result in results:
        body += part_header(boundary, DICOM_XML)
        body += to_xml(result)
        body += b"\r\n"
    body += closing(boundary)
    content_type = f'multipart/related; type="{DICOM_XML}"; boundary={boundary}'
    return Response(200, bytes(body), [("content-type", content_type), *headers])
