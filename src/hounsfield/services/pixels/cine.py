"""Cine of a whole series: its image instances, in Instance Number order, as one animated GIF
or video (PS3.18 8.7.4: image/gif and video/mp4 are the rendered media types of multi-frame
content; a series played as a stack is the same kind of content).

The index lists a series' instances in Instance Number order (then arrival order), which is the
order of play; every frame of a multi-frame instance is played in turn. The frame time is the
requested frame rate, else that of the first instance's header (Frame Time (0018,1063), else
Recommended Display Frame Rate (0008,2144) or Cine Rate (0018,0040); see
`service.frame_time_ms`), else 100 ms.

The work is bounded before anything is decoded: a series of more than
`render.MAX_ANIMATION_FRAMES` frames, or whose rendered frames would take more than
`render.MAX_ANIMATION_BYTES` (GIF only), is refused (the caller answers 400 and points at the
multipart form, which streams one frame at a time). Stored values are decoded one frame at a
time and not kept in the decoded-frame cache; a GIF holds the 8-bit rendered pictures until it
is encoded (Pillow writes a GIF from all its frames), a video encodes each picture as it is
rendered and holds only its compressed frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from hounsfield.domain.errors import InvalidDicomError, NotFoundError
from hounsfield.ports.index import StoredInstance
from hounsfield.services.pixels import render
from hounsfield.services.pixels.codec import CodecError
from hounsfield.services.pixels.service import PixelService, Source, annotation_text, frame_time_ms

#: The highest `framerate` accepted (GIF counts frame times in hundredths of a second).
MAX_FRAME_RATE = 100.0


def frame_total(instances: Sequence[StoredInstance]) -> int:
    """Frames of the series from the index alone (no header read): an instance without a
    recorded layout counts its Number of Frames, at least one."""
    total = 0
    for instance in instances:
        if instance.pixel is not None and instance.pixel.frames:
            total += len(instance.pixel.frames)
        else:
            total += max(instance.number_of_frames, 1)
    return total


def etag(instances: Sequence[StoredInstance], representation: str) -> str:
    """A strong entity tag for the animation: the stored bytes of every instance, in order,
    and the rendering variant."""
    sha = hashlib.sha256(representation.encode())
    for instance in instances:
        sha.update(f"|{instance.sop_uid}:{instance.sha256}".encode())
    return f'"{sha.hexdigest()[:32]}"'


def _conform(image: np.ndarray[Any, Any], first: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """One picture of an animation has the size and colour mode of its first one (a series
    may mix sizes, or grayscale and colour)."""
    if image.ndim != first.ndim:
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., 0]
    if image.shape[:2] != first.shape[:2]:
        picture = Image.fromarray(np.ascontiguousarray(image))
        size = (first.shape[1], first.shape[0])
        image = np.asarray(picture.resize(size, Image.Resampling.BILINEAR))
    return image


def _source(pixels: PixelService, instance: StoredInstance) -> Source | None:
    try:
        return pixels.source(instance)
    except (NotFoundError, CodecError, InvalidDicomError):
        return None  # an SR, a KOS, a presentation state...: nothing to play


def render_series(
    pixels: PixelService, instances: Sequence[StoredInstance], options: render.RenderOptions
) -> bytes:
    """Every frame of every image instance, in order, as one GIF or MP4 (`options.media_type`).
    NotFoundError when no instance holds an image; AnimationTooLargeError past the bounds."""
    variant = "series|" + etag(instances, render.variant([], options, None))
    if pixels.outputs is not None and instances:
        kept = pixels.outputs.get(instances[0], variant)
        if kept is not None:
            return kept
    total = frame_total(instances)
    video = options.media_type == render.MP4
    if total > render.MAX_ANIMATION_FRAMES:
        render.check_animation_bounds(total, 0, 0, 1, options)
    sources = ((i, _source(pixels, instance)) for i, instance in enumerate(instances))
    found = next(((i, s) for i, s in sources if s is not None), None)
    if found is None:
        raise NotFoundError("no instance of this series holds an image")
    start, first = found
    if not video:  # a video holds only its compressed frames: no bound on rendered bytes
        info = first.info
        render.check_animation_bounds(total, info.rows, info.columns, info.samples, options)

    def pictures() -> Iterator[np.ndarray[Any, Any]]:
        """The rendered frames one by one (a video encodes each as it comes)."""
        reference: np.ndarray[Any, Any] | None = None
        for index in range(start, len(instances)):
            source = first if index == start else _source(pixels, instances[index])
            if source is None:
                continue
            for number in range(1, source.frame_count + 1):
                decoded = pixels.decode(source, number, keep=False)
                shown = render.display(decoded, source.info.for_frame(number), options.window)
                image = render.region_and_viewport(shown, options.viewport)
                if options.annotations:
                    left, right = annotation_text(source, number, options)
                    image = render.annotate(image, left, right)
                if reference is None:
                    reference = image
                yield _conform(image, reference)

    frame_time = 1000.0 / options.frame_rate if options.frame_rate else frame_time_ms(first.summary)
    images = pictures() if video else list(pictures())
    output = render.encode(images, options.media_type, options.quality, frame_time)
    if pixels.outputs is not None:
        # Under the first instance's study (an erasure drops it with the study's outputs).
        pixels.outputs.put(instances[0], variant, output)
    return output


def pace(started: float, index: int, frame_rate: float, now: float) -> float:
    """Seconds to wait before part `index` (0-based) of a multipart response streamed at
    `frame_rate` parts per second, the first having left at `started` (clock time `now`)."""
    return max(0.0, started + index / frame_rate - now)
