"""Rendering frames for display: the grayscale and colour pipelines of PS3.4 Annex N.2, the
rendering parameters of PS3.18 8.3.5.1, and the rendered media types of PS3.18 8.7.4.

Grayscale (PS3.4 N.2.1): stored values -> Modality LUT (Rescale Slope/Intercept or the Modality
LUT Sequence, PS3.3 C.11.1) -> VOI LUT (the requested window, else the first window of the
header, else its VOI LUT Sequence, else the range of the values present; PS3.3 C.11.2) ->
Presentation LUT (MONOCHROME1 and Presentation LUT Shape INVERSE invert, PS3.3 C.11.6) -> 8-bit
P-values. Pixels equal to the Pixel Padding Value, or within the Pixel Padding Range Limit, are
shown black (PS3.3 C.7.5.1.1.2). Colour (N.2.2): YBR_FULL to RGB, PALETTE COLOR through its
tables, more than 8 bits scaled down. Then the source region and the viewport (PS3.18 8.3.5.1.3),
and the image is encoded as JPEG, PNG, GIF or (with PyAV) H.264 MP4.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
from PIL import Image

from hounsfield.services.pixels.codec import Decoded
from hounsfield.services.pixels.color import to_rgb
from hounsfield.services.pixels.image import ImageInfo

JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
MP4 = "video/mp4"
RENDERED_TYPES = (JPEG, PNG, GIF, MP4)
#: Media types that hold every frame asked for (the others hold one image).
MULTI_FRAME_TYPES = (GIF, MP4)
FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


#: Part of every rendered output's cache key and ETag: bump it when the pipeline's output
#: changes, so that nothing rendered by an earlier version is served.
RENDERER_VERSION = "2"


class RenderError(ValueError):
    """A rendering parameter that cannot be honoured (the caller answers 400)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Window Center, Width and VOI LUT Function (PS3.3 C.11.2.1.2, C.11.2.1.3)."""

    center: float
    width: float
    function: str = "LINEAR"

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise RenderError(f"unknown VOI LUT function {self.function!r}")
        # C.11.2.1.2: width >= 1 for LINEAR; C.11.2.1.3: width > 0 for the others.
        if self.width < (1 if self.function == "LINEAR" else 0) or (
            self.function != "LINEAR" and self.width == 0
        ):
            raise RenderError(f"window width {self.width} is out of range for {self.function}")


@dataclass(frozen=True, slots=True)
class Viewport:
    """PS3.18 8.3.5.1.3: the rendered size (vw, vh) and an optional source region; a negative
    sw or sh flips the region."""

    width: int
    height: int
    sx: int = 0
    sy: int = 0
    sw: int | None = None
    sh: int | None = None


@dataclass(frozen=True, slots=True)
class RenderOptions:
    media_type: str = JPEG
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = 90
    #: PS3.18 8.3.5.1.1: "patient" and/or "technique", burned in after rendering.
    annotations: tuple[str, ...] = ()
    #: Frames per second of an animation (the `framerate` query parameter), overriding the
    #: object's Frame Time / Recommended Display Frame Rate / Cine Rate.
    frame_rate: float | None = None


def variant(numbers: Sequence[int], options: RenderOptions, fit: int | None) -> str:
    """Everything besides the stored bytes that a rendered output depends on."""
    frames = ",".join(str(n) for n in numbers)
    return f"{RENDERER_VERSION}|{frames}|{options!r}|{fit}"


#: At most this many frames in one animated GIF or video (a 2,000-slice series or a 2,000-frame
#: instance is refused: ask for fewer, e.g. as multipart/related, which streams).
MAX_ANIMATION_FRAMES = 1000
#: At most this many bytes of rendered 8-bit pictures held while one animation is encoded.
MAX_ANIMATION_BYTES = 256 << 20


class AnimationTooLargeError(RenderError):
    """More frames than one animation may hold (the caller answers 400)."""


def check_animation_bounds(
    frames: int, rows: int, columns: int, samples: int, options: RenderOptions
) -> None:
    """Refuse, before decoding anything, an animation beyond `MAX_ANIMATION_FRAMES` frames or
    whose rendered pictures (at the viewport's size when one is asked for) would exceed
    `MAX_ANIMATION_BYTES`."""
    if frames > MAX_ANIMATION_FRAMES:
        raise AnimationTooLargeError(
            f"{frames} frames asked for; one animation holds at most {MAX_ANIMATION_FRAMES} "
            '(ask for multipart/related; type="image/jpeg", which streams frame by frame)'
        )
    pixels = rows * columns
    viewport = options.viewport
    if viewport is not None:
        pixels = min(pixels, viewport.width * viewport.height)
    size = frames * pixels * (3 if samples > 1 else 1)
    if size > MAX_ANIMATION_BYTES:
        raise AnimationTooLargeError(
            f"{frames} rendered frames would take {size >> 20} MiB; one animation holds at "
            f"most {MAX_ANIMATION_BYTES >> 20} MiB (ask for a smaller viewport)"
        )


def apply_window(
    values: np.ndarray[Any, Any], window: Window, ymin: float = 0.0, ymax: float = 255.0
) -> np.ndarray[Any, Any]:
    """The VOI LUT function of PS3.3 C.11.2.1.2.1 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) and
    C.11.2.1.3.1 (SIGMOID), in floating point; the caller rounds."""
    c, w = window.center, window.width
    x = values.astype(np.float64, copy=False)
    span = ymax - ymin
    if window.function == "SIGMOID":
        exponent = np.clip(-4.0 * (x - c) / w, -700.0, 700.0)  # exp() stays finite
        result: np.ndarray[Any, Any] = span / (1.0 + np.exp(exponent)) + ymin
        return result
    if window.function == "LINEAR_EXACT":
        y = ((x - c) / w + 0.5) * span + ymin
        y = np.where(x <= c - w / 2, ymin, y)
        return np.where(x > c + w / 2, ymax, y)
    if w == 1:  # C.11.2.1.2.1 note: a threshold at the center
        return np.where(x <= c - 0.5 - (w - 1) / 2, ymin, ymax)
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * span + ymin
    y = np.where(x <= c - 0.5 - (w - 1) / 2, ymin, y)
    return np.where(x > c - 0.5 + (w - 1) / 2, ymax, y)


def modality(values: np.ndarray[Any, Any], info: ImageInfo) -> np.ndarray[Any, Any]:
    """PS3.3 C.11.1: the Modality LUT Sequence, or Rescale Slope and Intercept."""
    if info.modality_lut is not None:
        return info.modality_lut.apply(values)
    if info.rescale_slope == 1.0 and info.rescale_intercept == 0.0:
        return values
    result: np.ndarray[Any, Any] = values * info.rescale_slope + info.rescale_intercept
    return result


def _padding_mask(values: np.ndarray[Any, Any], info: ImageInfo) -> np.ndarray[Any, Any] | None:
    if info.padding is None:
        return None
    low, high = info.padding
    mask: np.ndarray[Any, Any] = (values >= low) & (values <= high)
    return mask if mask.any() else None


def grayscale(decoded: Decoded, info: ImageInfo, window: Window | None) -> np.ndarray[Any, Any]:
    """One grayscale frame to 8-bit P-values (PS3.4 N.2.1).

    Integer stored values go through a lookup table built over the range of values present
    (at most 2^16 entries), so the floating point pipeline runs once per distinct value rather
    than once per pixel; floating point data (none here) would take the direct path."""
    stored = decoded.array
    padding = _padding_mask(stored, info)
    present = stored[~padding] if padding is not None else stored
    if present.size == 0:
        return np.zeros(stored.shape, dtype=np.uint8)
    low, high = int(present.min()), int(present.max())
    if padding is None:
        first, last = low, high
    else:
        first, last = min(low, int(stored.min())), max(high, int(stored.max()))
    if stored.dtype.kind in "iu" and last - first < (1 << 17):
        domain = np.arange(first, last + 1)
        present_domain = np.arange(low, high + 1)
        table = _p_values(domain, present_domain, decoded.photometric, info, window)
        # Offsets from the smallest value fit the stored width unsigned (last - first is
        # below 2^16 for 16-bit data), and `take` indexes with them without a 64-bit copy.
        offsets = stored - np.asarray(first).astype(stored.dtype)
        if stored.dtype.kind == "i":
            offsets = offsets.view(np.dtype(f"u{stored.dtype.itemsize}"))
        out: np.ndarray[Any, Any] = np.take(table, offsets)
    else:
        out = _p_values(stored, present, decoded.photometric, info, window)
    if padding is not None:
        out[padding] = 0
    return out


def _p_values(
    values: np.ndarray[Any, Any],
    present: np.ndarray[Any, Any],
    photometric: str,
    info: ImageInfo,
    window: Window | None,
) -> np.ndarray[Any, Any]:
    """Modality LUT, VOI LUT and Presentation LUT over `values`; `present` are the stored
    values that are not padding (for the automatic window)."""
    modality_values = modality(values, info)
    if window is None and info.windows:
        center, width = info.windows[0]
        function = info.voi_function if info.voi_function in FUNCTIONS else "LINEAR"
        window = Window(center, max(width, 1.0), function)
    if window is not None:
        shown = apply_window(modality_values, window)
    elif info.voi_luts:
        lut = info.voi_luts[0]
        top = float(max((1 << lut.bits) - 1, 1))
        shown = lut.apply(modality_values).astype(np.float64) * (255.0 / top)
    else:
        seen = modality(present, info)
        low, high = float(seen.min()), float(seen.max())
        shown = apply_window(
            modality_values, Window((low + high) / 2, max(high - low, 1.0), "LINEAR_EXACT")
        )
    if inverted(photometric, info):
        shown = 255.0 - shown
    table: np.ndarray[Any, Any] = np.clip(np.rint(shown), 0, 255).astype(np.uint8)
    return table


def inverted(photometric: str, info: ImageInfo) -> bool:
    """Whether the Presentation LUT inverts (PS3.4 N.2.1.4, PS3.3 C.11.6.1.2: P-Value =
    maximum - output). In an image (General Image module, PS3.3 C.7.6.1), Presentation LUT
    Shape (2050,0020) INVERSE goes with MONOCHROME1 and IDENTITY with MONOCHROME2: both
    describe one inversion, so MONOCHROME1 with INVERSE is inverted once, not twice. INVERSE
    on a MONOCHROME2 image (not what the standard asks for, but written by some modalities) is
    honoured as the one inversion; IDENTITY on MONOCHROME1 does not cancel the inversion that
    the Photometric Interpretation calls for."""
    return photometric == "MONOCHROME1" or info.presentation_inverse


def colour(decoded: Decoded, info: ImageInfo) -> np.ndarray[Any, Any]:
    """One colour frame to 8-bit RGB (PS3.4 N.2.2)."""
    rgb = to_rgb(decoded.array, decoded.photometric, info.bits_stored, info.palette)
    if rgb.dtype != np.uint8:
        shift = max(info.bits_stored - 8, 0)
        rgb = np.clip(rgb.astype(np.uint32) >> shift, 0, 255).astype(np.uint8)
    return rgb


def display(decoded: Decoded, info: ImageInfo, window: Window | None) -> np.ndarray[Any, Any]:
    if decoded.photometric in ("MONOCHROME1", "MONOCHROME2") or (
        decoded.array.ndim == 2 and decoded.photometric != "PALETTE COLOR"
    ):
        if info.bits_allocated == 1:
            invert = inverted(decoded.photometric, info)
            return np.where(decoded.array > 0, 0 if invert else 255, 255 if invert else 0).astype(
                np.uint8
            )
        return grayscale(decoded, info, window)
    return colour(decoded, info)


def region_and_viewport(
    image: np.ndarray[Any, Any], viewport: Viewport | None, default_fit: int | None = None
) -> np.ndarray[Any, Any]:
    """PS3.18 8.3.5.1.3: cut the source region (flipped when sw/sh are negative), then scale
    it to fit the viewport with its aspect ratio kept. `default_fit` bounds the larger side
    when no viewport is given (thumbnails)."""
    rows, columns = image.shape[:2]
    if viewport is None:
        if default_fit is None or max(rows, columns) <= default_fit:
            return image
        viewport = Viewport(default_fit, default_fit)
    sx, sy = viewport.sx, viewport.sy
    sw = viewport.sw if viewport.sw is not None else columns - sx
    sh = viewport.sh if viewport.sh is not None else rows - sy
    x0, x1 = sorted((sx, sx + sw))
    y0, y1 = sorted((sy, sy + sh))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, columns), min(y1, rows)
    if x1 <= x0 or y1 <= y0:
        raise RenderError("the source region lies outside the image")
    region = image[y0:y1, x0:x1]
    if sw < 0:
        region = region[:, ::-1]
    if sh < 0:
        region = region[::-1]
    height, width = region.shape[:2]
    scale = min(viewport.width / width, viewport.height / height)
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    if size == (width, height):
        return np.ascontiguousarray(region)
    picture = Image.fromarray(np.ascontiguousarray(region))
    return np.asarray(picture.resize(size, Image.Resampling.BILINEAR))


def annotate(
    image: np.ndarray[Any, Any], left: Sequence[str], right: Sequence[str]
) -> np.ndarray[Any, Any]:
    """Burn text into the corners of a rendered image (PS3.18 8.3.5.1.1: annotations are
    applied after everything else), white with a dark outline so that it reads on any
    background; the size follows the image."""
    from PIL import ImageDraw, ImageFont

    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    size = max(9, min(picture.height, picture.width) // 28)
    font = ImageFont.load_default(size=size)
    white: int | tuple[int, int, int] = 255 if picture.mode == "L" else (255, 255, 255)
    black: int | tuple[int, int, int] = 0 if picture.mode == "L" else (0, 0, 0)
    margin = max(2, size // 3)
    for column, lines in ((0, left), (1, right)):
        y = margin
        for line in lines:
            if not line:
                continue
            width = draw.textlength(line, font=font)
            x = margin if column == 0 else picture.width - margin - width
            draw.text(
                (x, y),
                line,
                font=font,
                fill=white,
                stroke_width=max(1, size // 8),
                stroke_fill=black,
            )
            y += size + margin // 2
    return np.asarray(picture)


def encode(
    images: Sequence[np.ndarray[Any, Any]] | Iterator[np.ndarray[Any, Any]],
    media_type: str,
    quality: int = 90,
    frame_time_ms: float | None = None,
) -> bytes:
    """Encode 8-bit images; several images make an animated GIF or a video (one image
    otherwise). A video may be given an iterator: each image is encoded as it comes."""
    if media_type == MP4:
        return _mp4(iter(images), quality, frame_time_ms)
    images = list(images)
    first = images[0]
    if media_type == JPEG:
        return bytes(imagecodecs.jpeg8_encode(first, level=quality))
    if media_type == PNG:
        # zlib level 1: four times faster than the default for 30 % more bytes.
        return bytes(imagecodecs.png_encode(first, level=1))
    if media_type == GIF:
        mode = "L" if first.ndim == 2 else "RGB"
        frames = [Image.fromarray(image, mode) for image in images]
        if mode == "RGB":
            frames = [frame.quantize(256) for frame in frames]
        buffer = io.BytesIO()
        duration = round(frame_time_ms) if frame_time_ms else 100
        frames[0].save(
            buffer,
            format="GIF",
            save_all=len(frames) > 1,
            append_images=frames[1:],
            duration=duration,
            loop=0,
        )
        return buffer.getvalue()
    raise RenderError(f"{media_type} is not a rendered media type of this archive")


class VideoUnavailableError(RenderError):
    """video/mp4 needs the optional PyAV package (the caller answers 406)."""


def _mp4(
    images: Iterator[np.ndarray[Any, Any]], quality: int, frame_time_ms: float | None
) -> bytes:
    """H.264 in MP4 (PS3.18 8.7.4: video/mp4 for multi-frame images) through PyAV, at the
    frame rate of the object. Sizes are padded to even numbers, as 4:2:0 chroma requires."""
    try:
        import av
    except ImportError as exc:
        raise VideoUnavailableError(
            "video/mp4 needs the optional video encoder: pip install 'hounsfield[video]'"
        ) from exc
    from fractions import Fraction

    first = next(images)
    rows, columns = first.shape[:2]
    height, width = rows + rows % 2, columns + columns % 2
    fps = Fraction(1000.0 / frame_time_ms if frame_time_ms else 10.0).limit_denominator(1000)
    buffer = io.BytesIO()
    # Fragmented MP4 (moov first, then fragments): playable while it loads, and written in
    # one pass (faststart would reopen the output by name).
    movflags = "frag_keyframe+empty_moov+default_base_moof"
    with av.open(buffer, mode="w", format="mp4", options={"movflags": movflags}) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # quality 100 -> CRF 10 (near lossless), 1 -> CRF 40.
        stream.options = {"crf": str(round(10 + (100 - quality) * 0.3)), "preset": "veryfast"}
        for image in itertools.chain([first], images):
            rgb = image if image.ndim == 3 else np.stack([image] * 3, axis=-1)
            if (height, width) != rgb.shape[:2]:
                rgb = np.pad(rgb, ((0, height - rows), (0, width - columns), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()
