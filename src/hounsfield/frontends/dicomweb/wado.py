"""WADO-RS: the Retrieve transaction (PS3.18 10.4) for instances, metadata, frames and bulk data.

Objects are streamed untouched from the blob store in their stored transfer syntax; metadata is
the concatenation of the per-instance documents built at ingest, with BulkDataURIs made absolute;
frames and bulk data are ranged reads at offsets recorded at ingest. Content negotiation follows
PS3.18 8.7 (8.7.3 transfer syntaxes, 8.7.7 bulk data, 8.7.8 Accept); when no acceptable
representation exists the answer is 406, never a silently different representation.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import orjson

from hounsfield.domain.errors import NotFoundError
from hounsfield.frontends.dicomweb.context import (
    Context,
    instance_url,
    partition_of,
    service_root,
    uid_param,
)
from hounsfield.frontends.dicomweb.dicomxml import to_xml
from hounsfield.frontends.dicomweb.negotiate import (
    FrameChoice,
    Transcoder,
    choose_frames,
    choose_instances,
)
from hounsfield.frontends.dicomweb.rendered import matches_etag, not_modified
from hounsfield.frontends.http.core import HttpError, Request, Response
from hounsfield.frontends.http.mediatypes import parse_accept
from hounsfield.frontends.http.multipart import closing, new_boundary, part_header
from hounsfield.ports.index import StoredInstance
from hounsfield.services.pixels.codec import CodecError
from hounsfield.services.pixels.service import PixelService

DICOM = "application/dicom"
OCTETS = "application/octet-stream"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"

T = TypeVar("T")


def _uids(request: Request) -> tuple[str, str | None, str | None]:
    study = uid_param(request, "study")
    series = uid_param(request, "series") if "series" in request.params else None
    sop = uid_param(request, "sop") if "sop" in request.params else None
    return study, series, sop


async def _thread_iter(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Drive a blocking iterator from worker threads, one item at a time (bounded memory)."""
    iterator = await asyncio.to_thread(make)
    sentinel = object()
    while True:
        item = await asyncio.to_thread(next, iterator, sentinel)
        if item is sentinel:
            return
        yield item  # type: ignore[misc]


def _not_found(exc: NotFoundError) -> HttpError:
    return HttpError(404, str(exc))


# --- instances ---------------------------------------------------------------------------


async def retrieve_instances(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    study, series, sop = _uids(request)
    retrieve = ctx.services.retrieve
    pixels = ctx.services.pixels
    try:
        instances = await asyncio.to_thread(retrieve.instances, partition, study, series, sop)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    choice = await asyncio.to_thread(
        choose_instances, request.headers.get("accept"), instances, pixels
    )

    def content(instance: StoredInstance) -> tuple[str, Callable[[], Iterator[bytes]]]:
        """The part's syntax and its bytes: stored untouched, or transcoded (PS3.18 8.7.3)."""
        target = choice.target
        if target is None or target == instance.transfer_syntax_uid or pixels is None:
            return instance.transfer_syntax_uid, lambda: retrieve.object_bytes(instance)
        return target, lambda: pixels.transcode(instance, target)

    if not choice.multipart:
        syntax, make = content(instances[0])
        content_type = f"{DICOM}; transfer-syntax={syntax}"
        # A single instance is the same bytes every time (stored, or transcoded by the same
        # code): a strong ETag (RFC 9110 8.8.3) lets a viewer revalidate instead of reloading.
        etag = PixelService.etag(instances[0], f"dicom|{syntax}")
        headers = [("etag", etag), ("cache-control", "private, no-cache")]
        if not_modified(request, etag):
            return Response(304, b"", headers)
        headers.append(("content-type", content_type))
        return Response(200, headers=headers, stream=_thread_iter(make))
    boundary = new_boundary()

    async def body() -> AsyncIterator[bytes]:
        for instance in instances:
            syntax, make = content(instance)
            yield part_header(boundary, f"{DICOM}; transfer-syntax={syntax}")
            async for chunk in _thread_iter(make):
                yield chunk
            yield b"\r\n"
        yield closing(boundary)

    content_type = f'multipart/related; type="{DICOM}"; boundary={boundary}'
    return Response(200, headers=[("content-type", content_type)], stream=body())


# --- metadata ----------------------------------------------------------------------------


def _absolute_bulk_uris(document: bytes, url: str) -> bytes:
    """Stored documents carry BulkDataURIs relative to their instance (see ParsedInstance);
    clients need absolute URIs (PS3.18 8.6.1.2), so the instance URL is prefixed in place."""
    return document.replace(
        b'"BulkDataURI":"bulkdata/', b'"BulkDataURI":"' + url.encode() + b"/bulkdata/"
    )


async def retrieve_metadata(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    study, series, sop = _uids(request)
    want_xml = False
    for media in parse_accept(request.headers.get("accept")):
        if media.type in (DICOM_JSON, "application/json", "*/*", "application/*"):
            break
        if media.type == "multipart/related" and media.params.get("type") == DICOM_XML:
            want_xml = True
            break
    else:
        raise HttpError(
            406,
            "metadata is available as application/dicom+json or "
            'multipart/related; type="application/dicom+xml"',
        )
    try:
        documents = await asyncio.to_thread(
            ctx.services.retrieve.metadata, partition, study, series, sop
        )
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    root = service_root(request, partition, ctx.options)
    parts = [
        _absolute_bulk_uris(doc, instance_url(root, i.study_uid, i.series_uid, i.sop_uid))
        for i, doc in documents
    ]
    if want_xml:
        boundary = new_boundary()
        body = bytearray()
        for part in parts:
            body += part_header(boundary, DICOM_XML) + to_xml(orjson.loads(part)) + b"\r\n"
        body += closing(boundary)
        content_type = f'multipart/related; type="{DICOM_XML}"; boundary={boundary}'
        return Response(200, bytes(body), [("content-type", content_type)])
    payload = b"[" + b",".join(parts) + b"]"
    headers = [("content-type", DICOM_JSON), ("vary", "Accept-Encoding")]
    if "gzip" in request.headers.get("accept-encoding", "") and len(payload) > 1024:
        payload = await asyncio.to_thread(gzip.compress, payload, 1)
        headers.append(("content-encoding", "gzip"))
    return Response(200, payload, headers)


# --- frames ------------------------------------------------------------------------------


def _frame_numbers(text: str) -> list[int]:
    """PS3.18 8.3.1.1.3 (uriref frame-list): comma-separated positive integers."""
    numbers: list[int] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item.isdigit() or int(item) < 1:
            raise HttpError(400, f"invalid frame number {item!r} (frames are numbered from 1)")
        numbers.append(int(item))
    return numbers


#: Stored frames read on the event loop (when the index and blobs allow it) up to this many
#: bytes; more (a long frame list, a huge frame) goes to a worker thread.
INLINE_FRAME_BYTES = 4 << 20


class _TranscodeCheckNeededError(Exception):
    """Negotiation wanted to know whether a transcoding is possible, which may parse the
    object's header: too slow for the event loop."""


class _DeferTranscodeChecks:
    def can_transcode(self, instance: StoredInstance, target: str) -> bool:
        raise _TranscodeCheckNeededError


async def retrieve_frames(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    study, series, sop = _uids(request)
    assert series is not None and sop is not None
    numbers = _frame_numbers(request.params["frames"])
    accept = request.headers.get("accept")
    if_none_match = request.headers.get("if-none-match")
    retrieve = ctx.services.retrieve
    pixels = ctx.services.pixels

    def locate(
        transcoder: Transcoder | None = pixels,
    ) -> tuple[StoredInstance, FrameChoice, str]:
        instance = retrieve.instances(partition, study, series, sop)[0]
        choice = choose_frames(accept, instance, transcoder)
        # The same frames in the same representation are the same bytes (the boundary is
        # derived from the tag too), so the response gets a strong ETag (RFC 9110 8.8.3) and
        # a viewer revalidating it costs no read.
        variant = f"frames|{','.join(str(n) for n in numbers)}|{choice.content_type}"
        return instance, choice, PixelService.etag(instance, variant)

    def read(instance: StoredInstance, choice: FrameChoice) -> list[list[bytes]]:
        if choice.transcode and pixels is not None:
            return [[pixels.frame_in(instance, n, choice.syntax)] for n in numbers]
        return [retrieve.frame(instance, n) for n in numbers]

    def locate_and_read() -> tuple[FrameChoice, str, list[list[bytes]] | None]:
        instance, choice, etag = locate()
        if matches_etag(if_none_match, etag):
            return choice, etag, None
        return choice, etag, read(instance, choice)

    async def inline() -> tuple[FrameChoice, str, list[list[bytes]] | None]:
        """A stored frame is a lookup and one small read: cheaper on the event loop than the
        hop to a thread. A transcoding check, decoding or a large read still go to one."""
        try:
            instance, choice, etag = locate(_DeferTranscodeChecks() if pixels else None)
        except _TranscodeCheckNeededError:
            return await asyncio.to_thread(locate_and_read)
        if matches_etag(if_none_match, etag):
            return choice, etag, None
        if choice.transcode or retrieve.frames_size(instance, numbers) > INLINE_FRAME_BYTES:
            return choice, etag, await asyncio.to_thread(read, instance, choice)
        return choice, etag, read(instance, choice)

    try:
        if retrieve.inline_reads:
            choice, etag, frames = await inline()
        else:
            choice, etag, frames = await asyncio.to_thread(locate_and_read)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    except CodecError as exc:
        raise HttpError(500, f"frame could not be transcoded: {exc}") from exc
    cache_headers = [("etag", etag), ("cache-control", "private, no-cache")]
    if frames is None:
        return Response(304, b"", cache_headers)
    boundary = etag.strip('"')
    parts: list[bytes] = []
    for fragments in frames:
        parts.append(part_header(boundary, choice.content_type))
        parts.extend(fragments)
        parts.append(b"\r\n")
    parts.append(closing(boundary))
    part_type = choice.content_type.split(";")[0]
    header = f'multipart/related; type="{part_type}"; boundary={boundary}'
    return Response(200, b"".join(parts), [("content-type", header), *cache_headers])


# --- bulk data ---------------------------------------------------------------------------


async def retrieve_bulkdata(request: Request, ctx: Context) -> Response:
    partition = partition_of(request, ctx.options)
    study, series, sop = _uids(request)
    assert series is not None and sop is not None
    path = request.params["path"].strip("/")
    single = False
    for media in parse_accept(request.headers.get("accept")):
        if media.type in ("*/*", "multipart/*"):
            break
        if media.type == "multipart/related" and media.params.get("type", OCTETS) in (
            OCTETS,
            "*/*",
        ):
            break
        if media.type == OCTETS:
            single = True
            break
    else:
        raise HttpError(406, "bulk data is available as application/octet-stream (PS3.18 8.7.7)")
    retrieve = ctx.services.retrieve
    try:
        instance = (await asyncio.to_thread(retrieve.instances, partition, study, series, sop))[0]
        data = await asyncio.to_thread(retrieve.bulk, instance, path)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    if single:
        return Response(200, data, [("content-type", OCTETS)])
    boundary = new_boundary()
    body = part_header(boundary, OCTETS) + data + b"\r\n" + closing(boundary)
    header = f'multipart/related; type="{OCTETS}"; boundary={boundary}'
    return Response(200, body, [("content-type", header)])


# --- delete ------------------------------------------------------------------------------


async def delete(request: Request, ctx: Context) -> Response:
    """Delete a study, series or instance (PS3.18 10.x "Delete", as in the Azure and dcm4chee
    archives: 204 on success, 404 when nothing matched)."""
    partition = partition_of(request, ctx.options)
    study, series, sop = _uids(request)
    try:
        await asyncio.to_thread(ctx.services.lifecycle.delete, partition, study, series, sop)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    return Response(204)
