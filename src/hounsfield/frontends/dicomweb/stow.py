"""STOW-RS: the Store Instances transaction (PS3.18 10.5).

The body is parsed as it arrives; each part is written to a staging file while hashed, its header
walked in a worker thread, and stored in batches through the ingest service. The response is the
Store Instances Response Module (PS3.18 Annex I) with the HTTP status of Table 10.5.3-1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from hounsfield.domain.status import FailureReason
from hounsfield.frontends.dicomweb.context import (
    Context,
    instance_url,
    partition_of,
    service_root,
    study_url,
    uid_param,
)
from hounsfield.frontends.dicomweb.dicomxml import to_xml
from hounsfield.frontends.http.audit import STUDIES_KEY
from hounsfield.frontends.http.core import HttpError, Request, Response
from hounsfield.frontends.http.mediatypes import parse_accept, parse_media_type
from hounsfield.frontends.http.multipart import MultipartParser, PartData, PartEnd, PartStart
from hounsfield.services.ingest import InstanceResult, Outcome, Prepared
from hounsfield.services.staging import StagingWriter

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"


def _response_type(request: Request) -> str:
    """PS3.18 10.5.2: the response is application/dicom+json or application/dicom+xml."""
    for media in parse_accept(request.headers.get("accept")):
        if media.matches(DICOM_JSON) or media.type == "application/json":
            return DICOM_JSON
        if media.matches(DICOM_XML):
            return DICOM_XML
    raise HttpError(406, "STOW-RS responses are application/dicom+json or application/dicom+xml")


async def store(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    expected_study = uid_param(request, "study") if "study" in request.params else None
    response_type = _response_type(request)
    content_type = request.headers.get("content-type")
    if not content_type:
        raise HttpError(
            415, 'STOW-RS needs Content-Type multipart/related; type="application/dicom"'
        )
    media = parse_media_type(content_type)
    if media.type != "multipart/related":
        raise HttpError(415, f"STOW-RS accepts multipart/related, not {media.type}")
    root_type = media.params.get("type", DICOM).lower()
    if root_type != DICOM:
        raise HttpError(
            415, f"only application/dicom parts are supported; the request has type={root_type}"
        )
    boundary = media.params.get("boundary")
    if not boundary:
        raise HttpError(400, "multipart/related Content-Type without a boundary parameter")

    results = await _receive_and_store(request, ctx, partition, boundary, expected_study, root_type)
    if not results:
        raise HttpError(400, "the multipart body contains no parts")
    root = service_root(request, partition, ctx.options)
    request.scope[STUDIES_KEY] = _stored_studies(results)
    body = _response_module(results, root, expected_study)
    status = _http_status(results)
    encoded = to_xml(body) if response_type == DICOM_XML else orjson.dumps(body)
    headers = [("content-type", response_type)]
    headers += [("warning", warning) for warning in _warnings(results)]
    return Response(status, encoded, headers)


def _stored_studies(results: list[InstanceResult]) -> dict[str, dict[str, int]]:
    """{study: {SOP class: count}} of what was stored, for the audit message."""
    studies: dict[str, dict[str, int]] = {}
    for result in results:
        if result.outcome is not Outcome.FAILED and result.study_uid:
            classes = studies.setdefault(result.study_uid, {})
            sop_class = result.sop_class_uid or ""
            classes[sop_class] = classes.get(sop_class, 0) + 1
    return studies


def _warnings(results: list[InstanceResult], most: int = 20) -> list[str]:
    """Human-readable reasons as HTTP Warning headers (RFC 7234 5.5, code 299, as PS3.18
    8.4.3 uses them), so a client sees why a part failed without decoding status codes."""
    lines = []
    for number, result in enumerate(results, start=1):
        if result.message and result.outcome is not Outcome.STORED:
            text = result.message.replace('"', "'")
            lines.append(f'299 hounsfield "part {number}: {text}"')
    return lines[:most]


async def _receive_and_store(
    request: Request,
    ctx: Context,
    partition: str,
    boundary: str,
    expected_study: str | None,
    root_type: str,
) -> list[InstanceResult]:
    ingest = ctx.services.ingest
    staging = ctx.services.staging
    parser = MultipartParser(boundary)
    results: list[InstanceResult | None] = []
    pending: list[tuple[int, asyncio.Task[Prepared | InstanceResult]]] = []
    writer: StagingWriter | None = None
    part_type = root_type
    received = 0
    limit = ctx.options.max_request_bytes

    async def flush() -> None:
        ready: list[tuple[int, Prepared]] = []
        for position, task in pending:
            outcome = await task
            if isinstance(outcome, Prepared):
                ready.append((position, outcome))
            else:
                results[position] = outcome
        pending.clear()
        if ready:
            stored = await asyncio.to_thread(ingest.store, [p for _, p in ready])
            for (position, _), result in zip(ready, stored, strict=True):
                results[position] = result

    try:
        async for chunk in request.stream():
            received += len(chunk)
            if limit and received > limit:
                raise HttpError(413, f"request body larger than max_request_bytes ({limit})")
            for event in parser.feed(chunk):
                if isinstance(event, PartStart):
                    part_type = parse_media_type(event.headers.get("content-type", root_type)).type
                    writer = staging.writer()
                elif isinstance(event, PartData):
                    assert writer is not None
                    writer.write(event.data)
                elif isinstance(event, PartEnd):
                    assert writer is not None
                    position = len(results)
                    results.append(None)
                    if part_type != DICOM:
                        writer.discard()
                        results[position] = InstanceResult(
                            Outcome.FAILED,
                            failure=FailureReason.CANNOT_UNDERSTAND,
                            message=f"part {position + 1} is {part_type}, not application/dicom",
                        )
                    elif writer.size == 0:
                        writer.discard()
                        results[position] = InstanceResult(
                            Outcome.FAILED,
                            failure=FailureReason.CANNOT_UNDERSTAND,
                            message=f"part {position + 1} is empty",
                        )
                    else:
                        staged = writer.finish()
                        task = asyncio.create_task(
                            asyncio.to_thread(ingest.prepare, staged, partition, expected_study)
                        )
                        pending.append((position, task))
                    writer = None
                    if len(pending) >= ctx.options.stow_batch_size:
                        await flush()
        parser.close()
        await flush()
    except BaseException as exc:
        if writer is not None:
            writer.discard()
        for _, task in pending:
            outcome = await task
            if isinstance(outcome, Prepared):
                staging.discard(outcome.staged)
        stored = [r for r in results if r is not None and r.outcome is not Outcome.FAILED]
        if not (isinstance(exc, HttpError) and stored):
            raise
        # Earlier batches are committed and must be reported as stored (PS3.18 10.5.3: 202,
        # "stored some of the Instances but ... failures exist for others"), not hidden behind
        # a 400 that would make the client believe nothing was kept.
        done = [r for r in results if r is not None]
        done.append(
            InstanceResult(
                Outcome.FAILED,
                failure=FailureReason.CANNOT_UNDERSTAND,
                message=f"request failed after part {len(results)}: {exc.message}",
            )
        )
        return done
    return [r for r in results if r is not None]


def _http_status(results: list[InstanceResult]) -> int:
    """PS3.18 Table 10.5.3-1: 200 all stored, 202 some stored with failures or warnings,
    409 none stored (400 when every part was unreadable: the request had bad syntax)."""
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if not failed:
        return 200 if all(r.outcome is Outcome.STORED for r in results) else 202
    if len(failed) < len(results):
        return 202
    if all(r.failure is FailureReason.CANNOT_UNDERSTAND for r in failed):
        return 400
    return 409


def _us(value: int) -> dict[str, Any]:
    return {"vr": "US", "Value": [value]}


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]}


def _response_module(
    results: list[InstanceResult], root: str, expected_study: str | None
) -> dict[str, dict[str, Any]]:
    """The Store Instances Response Module (PS3.18 Table I.1-1)."""
    referenced: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    studies: set[str] = set()
    for result in results:
        item: dict[str, Any] = {}
        if result.sop_class_uid:
            item["00081150"] = _ui(result.sop_class_uid)
        if result.sop_instance_uid:
            item["00081155"] = _ui(result.sop_instance_uid)
        if result.outcome is Outcome.FAILED:
            assert result.failure is not None
            item["00081197"] = _us(int(result.failure))
            failed.append(item)
            continue
        assert result.study_uid and result.series_uid and result.sop_instance_uid
        studies.add(result.study_uid)
        item["00081190"] = {
            "vr": "UR",
            "Value": [
                instance_url(root, result.study_uid, result.series_uid, result.sop_instance_uid)
            ],
        }
        if result.warning is not None:
            item["00081196"] = _us(int(result.warning))
        referenced.append(item)
    module: dict[str, dict[str, Any]] = {}
    study = expected_study or (next(iter(studies)) if len(studies) == 1 else None)
    if study is not None and referenced:
        module["00081190"] = {"vr": "UR", "Value": [study_url(root, study)]}
    if failed:
        module["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        module["00081199"] = {"vr": "SQ", "Value": referenced}
    return module
