"""WADO-URI (PS3.18 9): `GET /wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…`.

The URI service retrieves one instance, either as `application/dicom` (optionally in another
`transferSyntax`, transcoded as WADO-RS does) or rendered (image/jpeg, image/png, image/gif)
with the URI parameters of PS3.18 9.4 mapped onto the rendering of PS3.18 8.3.5: `rows` and
`columns` are maxima with the aspect ratio kept, `region` is x1,y1,x2,y2 as fractions of the
image, `windowCenter`/`windowWidth` a linear window, `frameNumber` the frame, `imageQuality`
the JPEG quality. Without `contentType` an Accept of */* selects image/jpeg (PS3.18 9.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

from hounsfield.domain.errors import InvalidDicomError, NotFoundError
from hounsfield.domain.identifiers import is_valid_uid
from hounsfield.frontends.dicomweb.context import Context, partition_of
from hounsfield.frontends.dicomweb.rendered import image_response
from hounsfield.frontends.http.core import HttpError, Request, Response
from hounsfield.frontends.http.mediatypes import parse_accept
from hounsfield.ports.index import StoredInstance
from hounsfield.services.pixels import render
from hounsfield.services.pixels.codec import CodecError
from hounsfield.services.pixels.render import RenderError, RenderOptions, Viewport, Window
from hounsfield.services.pixels.service import NoPixelDataError

DICOM = "application/dicom"
_UNSUPPORTED = ("anonymize", "presentationUID", "presentationSeriesUID")


def _params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_items():
        if name in params:
            raise HttpError(400, f"WADO-URI parameter {name!r} given more than once")
        params[name] = value
    return params


def _uid(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise HttpError(400, f"WADO-URI parameter {name!r} is required (PS3.18 9.4)")
    if not is_valid_uid(value):
        raise HttpError(400, f"{name} {value!r} is not a valid UID")
    return value


def _content_type(params: dict[str, str], accept: str | None) -> str:
    """PS3.18 9.3 and 9.4.1: the contentType list (in order of preference), else Accept."""
    offered = params.get("contentType") or accept
    for media in parse_accept(offered):
        if media.type in (DICOM, *render.RENDERED_TYPES):
            return media.type
        if media.type in ("*/*", "image/*"):
            return render.JPEG
    raise HttpError(406, "WADO-URI serves application/dicom, image/jpeg, image/png and image/gif")


def _positive(params: dict[str, str], name: str, low: int, high: int) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise HttpError(400, f"{name} {text!r}: an integer from {low} to {high} expected")
    return int(text)


def _float(params: dict[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise HttpError(400, f"{name} {text!r} is not a number") from exc


def _region(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise HttpError(400, f"region {text!r}: x1,y1,x2,y2 expected") from exc
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise HttpError(400, f"region {text!r}: fractions with 0 <= x1 < x2 <= 1 expected")
    return x1, y1, x2, y2


async def wado(request: Request, ctx: Context) -> Response:
    params = _params(request)
    if params.get("requestType") != "WADO":
        raise HttpError(400, "requestType=WADO is required (PS3.18 9.4.1)")
    for name in _UNSUPPORTED:
        if name in params:
            raise HttpError(400, f"WADO-URI parameter {name!r} is not supported")
    partition = partition_of(request, ctx.options)
    study, series, sop = (_uid(params, n) for n in ("studyUID", "seriesUID", "objectUID"))
    media_type = _content_type(params, request.headers.get("accept"))
    try:
        (instance,) = await asyncio.to_thread(
            ctx.services.retrieve.instances, partition, study, series, sop
        )
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from exc
    if media_type == DICOM:
        return _dicom(ctx, instance, params.get("transferSyntax"))
    if "transferSyntax" in params:
        raise HttpError(400, "transferSyntax applies to contentType=application/dicom only")
    return await _rendered(request, ctx, instance, params, media_type)


def _dicom(ctx: Context, instance: StoredInstance, wanted: str | None) -> Response:
    stored = instance.transfer_syntax_uid
    pixels = ctx.services.pixels
    make: Callable[[], Iterator[bytes]]
    if wanted in (None, "", "*", stored) or pixels is None:
        if wanted not in (None, "", "*", stored):
            raise HttpError(406, f"the object is stored as {stored}")
        make, syntax = (lambda: ctx.services.retrieve.object_bytes(instance)), stored
    elif pixels.can_transcode(instance, str(wanted)):
        target = str(wanted)
        make, syntax = (lambda: pixels.transcode(instance, target)), target
    else:
        raise HttpError(406, f"the object is stored as {stored} and cannot be written in {wanted}")

    async def body() -> AsyncIterator[bytes]:
        iterator = await asyncio.to_thread(make)
        sentinel = b""
        while True:
            chunk = await asyncio.to_thread(next, iterator, sentinel)
            if chunk is sentinel:
                return
            yield chunk

    content_type = f"{DICOM}; transfer-syntax={syntax}"
    return Response(200, headers=[("content-type", content_type)], stream=body())


async def _rendered(
    request: Request,
    ctx: Context,
    instance: StoredInstance,
    params: dict[str, str],
    media_type: str,
) -> Response:
    pixels = ctx.services.pixels
    if pixels is None:
        raise HttpError(501, "the pixel services are not configured")
    try:
        info = (await asyncio.to_thread(pixels.source, instance)).info
    except NoPixelDataError as exc:
        raise HttpError(406, f"instance {instance.sop_uid} has no image to render") from exc
    except (CodecError, InvalidDicomError) as exc:
        raise HttpError(500, str(exc)) from exc
    center, width = _float(params, "windowCenter"), _float(params, "windowWidth")
    if (center is None) != (width is None):
        raise HttpError(400, "windowCenter and windowWidth go together (PS3.18 9.4.3)")
    try:
        window = Window(center, width) if center is not None and width is not None else None
    except RenderError as exc:
        raise HttpError(400, str(exc)) from exc
    rows = _positive(params, "rows", 1, 8192)
    columns = _positive(params, "columns", 1, 8192)
    sx, sy, sw, sh = 0, 0, info.columns, info.rows
    if "region" in params:
        x1, y1, x2, y2 = _region(params["region"])
        sx, sy = round(x1 * info.columns), round(y1 * info.rows)
        sw = max(round(x2 * info.columns) - sx, 1)
        sh = max(round(y2 * info.rows) - sy, 1)
    viewport = None
    if rows is not None or columns is not None or "region" in params:
        # PS3.18 9.4.x: rows/columns are maxima; one alone keeps the aspect ratio.
        vw = columns if columns is not None else (sw * rows // sh if rows else sw)
        vh = rows if rows is not None else (sh * vw // sw if columns else sh)
        viewport = Viewport(max(vw, 1), max(vh, 1), sx, sy, sw, sh)
    quality = _positive(params, "imageQuality", 1, 100) or 90
    frame = _positive(params, "frameNumber", 1, 1 << 20)
    annotations = tuple(
        sorted({a.strip().lower() for a in params.get("annotation", "").split(",") if a.strip()})
    )
    if set(annotations) - {"patient", "technique"}:
        raise HttpError(400, f"annotation {params['annotation']!r}: patient, technique")
    options = RenderOptions(media_type, window, viewport, quality, annotations)
    if frame is not None and frame > info.frames:
        raise HttpError(400, f"frameNumber {frame}: the instance has {info.frames} frames")
    numbers = [frame] if frame is not None else list(range(1, info.frames + 1))
    return await image_response(request, pixels, instance, numbers, options)
