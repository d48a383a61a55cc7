"""WADO-RS Retrieve Rendered and Thumbnail (PS3.18 10.4.1.1.x, 8.3.5, 8.7.4).

Rendered study and series resources are `multipart/related` of one rendered image per frame
(or one animated GIF per instance), and a series asked for as bare image/gif or video/mp4 is one
animation of all its instances (services/pixels/cine.py); an instance is one image (its first
frame, or all frames as an animated GIF); `/frames/{list}/rendered` is one image for one frame
and a multipart (or an animated GIF) for several. Multipart responses stream part by part, at
`framerate` parts per second when that is asked for. A thumbnail is always a single image of a
representative frame (the middle image instance of the resource, its first frame), scaled to at
most 128 pixels unless a viewport is given, with no patient information (PS3.18 10.4.3.3.4:
nothing is burned in).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hounsfield.domain.errors import InvalidDicomError, NotFoundError
from hounsfield.frontends.dicomweb.context import Context, partition_of, uid_param
from hounsfield.frontends.http.core import HttpError, Request, Response
from hounsfield.frontends.http.mediatypes import parse_accept
from hounsfield.frontends.http.multipart import closing, new_boundary, part_header
from hounsfield.ports.index import StoredInstance
from hounsfield.services.pixels import cine, render
from hounsfield.services.pixels.codec import CodecError
from hounsfield.services.pixels.render import (
    RenderError,
    RenderOptions,
    VideoUnavailableError,
    Viewport,
    Window,
)
from hounsfield.services.pixels.service import NoPixelDataError, PixelService

THUMBNAIL_SIZE = 128
_FUNCTIONS = {
    "linear": "LINEAR",
    "linear-exact": "LINEAR_EXACT",
    "linear_exact": "LINEAR_EXACT",
    "sigmoid": "SIGMOID",
}


def _numbers(text: str, what: str, count: int) -> list[float]:
    items = [x.strip() for x in text.split(",")]
    try:
        values = [float(x) for x in items]
    except ValueError as exc:
        raise HttpError(400, f"{what} {text!r}: comma-separated numbers expected") from exc
    if len(values) != count:
        raise HttpError(400, f"{what} {text!r}: {count} values expected")
    return values


def parse_window(text: str) -> Window:
    """PS3.18 8.3.5.1.4: window=center,width,function (linear, linear-exact, sigmoid); the
    function may be left out (linear)."""
    items = [x.strip() for x in text.split(",")]
    if len(items) == 2:
        items.append("linear")
    if len(items) != 3:
        raise HttpError(400, f"window {text!r}: center,width,function expected")
    function = _FUNCTIONS.get(items[2].lower())
    if function is None:
        raise HttpError(400, f"window function {items[2]!r}: linear, linear-exact or sigmoid")
    center, width = _numbers(",".join(items[:2]), "window", 2)
    try:
        return Window(center, width, function)
    except VideoUnavailableError as exc:
        raise HttpError(406, str(exc)) from exc
    except RenderError as exc:
        raise HttpError(400, str(exc)) from exc


def parse_viewport(text: str) -> Viewport:
    """PS3.18 8.3.5.1.3: viewport=vw,vh[,sx,sy,sw,sh]; sx and sy default to 0, sw and sh to
    the rest of the image (they may be empty), negative sw/sh flip the region."""
    items = [x.strip() for x in text.split(",")]
    if len(items) not in (2, 6):
        raise HttpError(400, f"viewport {text!r}: vw,vh or vw,vh,sx,sy,sw,sh expected")
    try:
        values = [int(x) if x else None for x in items]
    except ValueError as exc:
        raise HttpError(400, f"viewport {text!r}: integers expected") from exc
    vw, vh = values[0], values[1]
    if vw is None or vh is None or vw <= 0 or vh <= 0 or vw > 8192 or vh > 8192:
        raise HttpError(400, f"viewport {text!r}: vw and vh must be 1 to 8192")
    if len(values) == 2:
        return Viewport(vw, vh)
    sx, sy, sw, sh = values[2:]
    if (sx or 0) < 0 or (sy or 0) < 0 or sw == 0 or sh == 0:
        raise HttpError(400, f"viewport {text!r}: invalid source region")
    return Viewport(vw, vh, sx or 0, sy or 0, sw, sh)


def _negotiate(request: Request, multipart: bool) -> tuple[str, bool]:
    """PS3.18 8.7.4 and 8.3.3.1: the `accept` query parameter, else the Accept header; the
    rendered media type, and whether it was asked for inside multipart/related."""
    query = [v for k, v in request.query_items() if k == "accept"]
    header = ", ".join(query) if query else request.headers.get("accept")
    for media in parse_accept(header):
        kind = media.type
        wrapped = kind in ("multipart/related", "multipart/*")
        if kind == "multipart/related":
            kind = media.params.get("type", render.JPEG)
        if kind in render.RENDERED_TYPES:
            return kind, wrapped
        if kind in ("*/*", "image/*", "multipart/*"):
            return render.JPEG, wrapped
        if kind == "video/*":
            return render.MP4, wrapped
    raise HttpError(
        406,
        "rendered resources are available as image/jpeg, image/png, image/gif and video/mp4"
        + (" (in multipart/related)" if multipart else ""),
    )


def _media_type(request: Request, multipart: bool) -> str:
    return _negotiate(request, multipart)[0]


def parse_frame_rate(text: str) -> float:
    """`framerate` (frames per second, this archive's parameter; PS3.18 8.3.5.1 defines
    none): the pace of an animation, or of the parts of a streamed multipart response."""
    try:
        rate = float(text.strip())
    except ValueError as exc:
        raise HttpError(400, f"framerate {text!r}: a number of frames per second expected") from exc
    if not 0 < rate <= cine.MAX_FRAME_RATE:
        raise HttpError(400, f"framerate {text!r}: more than 0, at most {cine.MAX_FRAME_RATE:g}")
    return rate


def parse_options(request: Request, multipart: bool = False) -> RenderOptions:
    params: dict[str, str] = {}
    for name, value in request.query_items():
        params.setdefault(name, value)
    window = parse_window(params["window"]) if "window" in params else None
    viewport = parse_viewport(params["viewport"]) if "viewport" in params else None
    quality = 90
    if "quality" in params:
        text = params["quality"].strip()
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise HttpError(400, f"quality {text!r}: an integer from 1 to 100 expected")
        quality = int(text)
    annotations: tuple[str, ...] = ()
    if "annotation" in params:
        annotations = tuple(sorted({a.strip().lower() for a in params["annotation"].split(",")}))
        unknown = set(annotations) - {"patient", "technique"}
        if unknown:
            raise HttpError(400, f"annotation {params['annotation']!r}: patient, technique")
    frame_rate = parse_frame_rate(params["framerate"]) if "framerate" in params else None
    media_type = _media_type(request, multipart)
    return RenderOptions(media_type, window, viewport, quality, annotations, frame_rate)


async def _instances(request: Request, ctx: Context) -> list[StoredInstance]:
    partition = partition_of(request, ctx.options)
    study = uid_param(request, "study")
    series = uid_param(request, "series") if "series" in request.params else None
    sop = uid_param(request, "sop") if "sop" in request.params else None
    retrieve = ctx.services.retrieve
    try:
        if sop is not None and retrieve.inline_reads:
            # One instance from an embedded index: cheaper than the hop to a thread.
            return retrieve.instances(partition, study, series, sop)
        return await asyncio.to_thread(retrieve.instances, partition, study, series, sop)
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from exc


def _pixels(ctx: Context) -> PixelService:
    if ctx.services.pixels is None:
        raise HttpError(501, "the pixel services are not configured")
    return ctx.services.pixels


async def render_frames(
    pixels: PixelService,
    instance: StoredInstance,
    numbers: list[int],
    options: RenderOptions,
    fit: int | None = None,
) -> bytes:
    try:
        return await asyncio.to_thread(pixels.render, instance, numbers, options, fit)
    except NoPixelDataError as exc:
        raise HttpError(406, f"instance {instance.sop_uid} has no image to render") from exc
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from exc
    except VideoUnavailableError as exc:
        raise HttpError(406, str(exc)) from exc
    except RenderError as exc:
        raise HttpError(400, str(exc)) from exc
    except (CodecError, InvalidDicomError) as exc:
        raise HttpError(500, f"instance {instance.sop_uid} cannot be decoded: {exc}") from exc


#: Rendered images hold PHI: no shared cache may keep them, and a private one revalidates
#: (cheaply: a matching If-None-Match is answered 304 without rendering).
CACHE_CONTROL = "private, no-cache"


def not_modified(request: Request, etag: str) -> bool:
    """RFC 9110 13.1.2: If-None-Match with `*` or a tag equal (weakly) to ours."""
    return matches_etag(request.headers.get("if-none-match"), etag)


def matches_etag(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: the If-None-Match value is `*` or lists a tag equal (weakly) to ours."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def image_response(
    request: Request,
    pixels: PixelService,
    instance: StoredInstance,
    numbers: list[int],
    options: RenderOptions,
    fit: int | None = None,
) -> Response:
    """One rendered image with its ETag, or 304 when the client has it already."""
    if options.media_type not in render.MULTI_FRAME_TYPES:
        numbers = numbers[:1]
    etag = pixels.etag(instance, render.variant(numbers, options, fit))
    headers = [("etag", etag), ("cache-control", CACHE_CONTROL)]
    if not_modified(request, etag):
        return Response(304, b"", headers)
    body = await render_frames(pixels, instance, numbers, options, fit)
    return Response(200, body, [("content-type", options.media_type), *headers])


def _frames_param(request: Request) -> list[int]:
    numbers: list[int] = []
    for raw in request.params["frames"].split(","):
        item = raw.strip()
        if not item.isdigit() or int(item) < 1:
            raise HttpError(400, f"invalid frame number {item!r} (frames are numbered from 1)")
        numbers.append(int(item))
    return numbers


async def rendered_instance(request: Request, ctx: Context) -> Response:
    options = parse_options(request)
    pixels = _pixels(ctx)
    (instance,) = (await _instances(request, ctx))[:1]
    numbers = [1]
    if options.media_type in render.MULTI_FRAME_TYPES:
        try:
            count = await asyncio.to_thread(pixels.frame_count, instance)
        except NoPixelDataError as exc:
            raise HttpError(406, f"instance {instance.sop_uid} has no image to render") from exc
        except (CodecError, InvalidDicomError) as exc:
            raise HttpError(500, str(exc)) from exc
        numbers = list(range(1, count + 1))
    return await image_response(request, pixels, instance, numbers, options)


async def rendered_frames(request: Request, ctx: Context) -> Response:
    numbers = _frames_param(request)
    pixels = _pixels(ctx)
    (instance,) = (await _instances(request, ctx))[:1]
    single = len(numbers) == 1
    options = parse_options(request, multipart=not single)
    if single or options.media_type in render.MULTI_FRAME_TYPES:
        return await image_response(request, pixels, instance, numbers, options)
    # Several frames as multipart: every number is checked before the response starts (an
    # error after the first part could no longer change the status), then the parts are
    # rendered one by one as they are sent, at `framerate` parts per second when asked.
    try:
        count = await asyncio.to_thread(pixels.frame_count, instance)
    except NoPixelDataError as exc:
        raise HttpError(406, f"instance {instance.sop_uid} has no image to render") from exc
    except (CodecError, InvalidDicomError) as exc:
        raise HttpError(500, str(exc)) from exc
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise HttpError(404, f"frame {beyond[0]} does not exist (instance has {count} frames)")
    boundary = new_boundary()

    async def body() -> AsyncIterator[bytes]:
        pacer = _Pacer(options.frame_rate)
        for number in numbers:
            image = await render_frames(pixels, instance, [number], options)
            await pacer.wait()
            yield part_header(boundary, options.media_type) + image + b"\r\n"
        yield closing(boundary)

    header = f'multipart/related; type="{options.media_type}"; boundary={boundary}'
    return Response(200, headers=[("content-type", header)], stream=body())


class _Pacer:
    """Holds part n of a streamed multipart back until n / rate seconds after the first
    (`framerate`); no wait without a rate."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.started: float | None = None
        self.sent = 0

    async def wait(self) -> None:
        if self.rate:
            now = asyncio.get_running_loop().time()
            if self.started is None:
                self.started = now
            await asyncio.sleep(cine.pace(self.started, self.sent, self.rate, now))
        self.sent += 1


async def series_cine(
    request: Request, pixels: PixelService, instances: list[StoredInstance], options: RenderOptions
) -> Response:
    """A series as one animation (bare image/gif or video/mp4): services/pixels/cine.py."""
    etag = cine.etag(instances, render.variant([], options, None))
    headers = [("etag", etag), ("cache-control", CACHE_CONTROL)]
    if not_modified(request, etag):
        return Response(304, b"", headers)
    try:
        body = await asyncio.to_thread(cine.render_series, pixels, instances, options)
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from exc
    except VideoUnavailableError as exc:
        raise HttpError(406, str(exc)) from exc
    except RenderError as exc:
        raise HttpError(400, str(exc)) from exc
    except (CodecError, InvalidDicomError) as exc:
        raise HttpError(500, f"the series cannot be decoded: {exc}") from exc
    return Response(200, body, [("content-type", options.media_type), *headers])


async def rendered_collection(request: Request, ctx: Context) -> Response:
    """A study or series: every frame of every image instance, streamed part by part (at
    `framerate` parts per second when asked); a series asked for as bare image/gif or
    video/mp4 is one animation of all its instances (`series_cine`)."""
    options = parse_options(request, multipart=True)
    pixels = _pixels(ctx)
    instances = await _instances(request, ctx)
    if (
        "series" in request.params
        and options.media_type in render.MULTI_FRAME_TYPES
        and not _negotiate(request, True)[1]
    ):
        return await series_cine(request, pixels, instances, options)

    async def frame_count(instance: StoredInstance) -> int | None:
        try:
            return await asyncio.to_thread(pixels.frame_count, instance)
        except (NotFoundError, CodecError, InvalidDicomError):
            return None  # an SR, a KOS...: nothing to render as an image

    # Only the first image is looked for before answering (404 when there is none); the
    # others are read while the response streams, so the first part leaves at once.
    first = 0
    count = None
    while first < len(instances) and count is None:
        count = await frame_count(instances[first])
        first += 1
    if count is None:
        raise HttpError(404, "no instance of this resource holds an image")
    boundary = new_boundary()

    async def body() -> AsyncIterator[bytes]:
        pacer = _Pacer(options.frame_rate)
        frames: int | None = count
        for index, instance in enumerate(instances[first - 1 :]):
            if index:
                frames = await frame_count(instance)
            if frames is None:
                continue
            groups = (
                [list(range(1, frames + 1))]
                if options.media_type in render.MULTI_FRAME_TYPES
                else [[n] for n in range(1, frames + 1)]
            )
            for numbers in groups:
                image = await render_frames(pixels, instance, numbers, options)
                await pacer.wait()
                yield part_header(boundary, options.media_type) + image + b"\r\n"
        yield closing(boundary)

    header = f'multipart/related; type="{options.media_type}"; boundary={boundary}'
    return Response(200, headers=[("content-type", header)], stream=body())


async def thumbnail(request: Request, ctx: Context) -> Response:
    """PS3.18 10.4.3.3.4: a single image chosen by the origin server."""
    options = parse_options(request)
    # PS3.18 10.4.3.3.4: a thumbnail never carries patient information.
    options = RenderOptions(options.media_type, options.window, options.viewport, options.quality)
    pixels = _pixels(ctx)
    instances = await _instances(request, ctx)
    number = _frames_param(request)[0] if "frames" in request.params else 1
    with_frames = [i for i in instances if i.pixel is not None and i.pixel.frames]
    candidates: list[StoredInstance] = []
    if with_frames:
        middle = with_frames[len(with_frames) // 2]
        candidates = [middle, *[i for i in with_frames if i is not middle]]
    candidates += [i for i in instances if i not in with_frames]  # deflated objects, SRs
    for instance in candidates[:8]:
        try:
            return await image_response(
                request, pixels, instance, [number], options, THUMBNAIL_SIZE
            )
        except HttpError as exc:
            if exc.status in (400, 404) and len(instances) == 1:
                raise
            continue
    raise HttpError(404, "no instance of this resource holds an image")
