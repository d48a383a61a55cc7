"""The pixel service: frames decoded, instances and frames transcoded, frames rendered.

Reading an instance costs one ranged read of its header (up to the Pixel Data value, whose
offset ingest recorded) parsed by pydicom, and one ranged read per frame; the parsed header of
recently used instances is kept (bounded) because a viewer asks for many frames of one object.
Objects whose frames have no recorded offsets (deflated data sets, PS3.5 A.5) are read whole.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from io import BytesIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from hounsfield.domain.errors import InvalidDicomError, NotFoundError
from hounsfield.ports.index import StoredInstance
from hounsfield.services.caching import RenderedOutputs
from hounsfield.services.pixels import codec, render, transcode
from hounsfield.services.pixels.codec import CodecError, Decoded
from hounsfield.services.pixels.image import ImageInfo, image_info
from hounsfield.services.pixels.syntaxes import EXPLICIT_VR_BE, SYNTAXES, can_encode
from hounsfield.services.retrieve import RetrieveService

#: Descriptions kept (a few KiB each): enough for the series a viewer scrolls through, so
#: that rendering a frame parses no header (pydicom takes about 0.8 ms for a CT header).
_HEADERS_KEPT = 4096
#: Memory for recently decoded frames (per process): 128 frames of a 512x512 CT.
DECODED_FRAMES_BYTES = 64 << 20


class NoPixelDataError(NotFoundError):
    """The instance holds no image (an SR, a KOS...): only its header can be re-encoded."""


#: What rendering reads from a header besides the Image Pixel description (annotations,
#: frame timing): kept with the description, so that rendering needs no full header.
_SUMMARY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "Modality",
    "StudyDate",
    "SeriesDescription",
    "FrameTime",
    "FrameTimeVector",
    "RecommendedDisplayFrameRate",
    "CineRate",
)


def _summary(header: Dataset) -> Dataset:
    summary = Dataset()
    for keyword in _SUMMARY:
        if keyword in header:
            summary[keyword] = header[keyword]
    return summary


class Source:
    """An instance ready to be decoded: its description, its frames, a summary of its header
    for display, and the whole header (parsed when first asked for: transcoding needs it,
    rendering does not)."""

    __slots__ = (
        "_header",
        "_load_header",
        "compressed_bytes",
        "frame_count",
        "info",
        "key",
        "read_frame",
        "summary",
    )

    def __init__(
        self,
        summary: Dataset,
        info: ImageInfo,
        frame_count: int,
        compressed_bytes: int,
        read_frame: Callable[[int], bytes],  # 1-based frame number -> the frame's bytes
        key: str = "",  # identifies the stored bytes the frames come from
        load_header: Callable[[], Dataset] | None = None,
    ) -> None:
        self.summary = summary
        self.info = info
        self.frame_count = frame_count
        self.compressed_bytes = compressed_bytes
        self.read_frame = read_frame
        self.key = key
        self._load_header = load_header
        self._header: Dataset | None = None if load_header is not None else summary

    @property
    def header(self) -> Dataset:
        if self._header is None:
            assert self._load_header is not None
            self._header = self._load_header()
        return self._header


def _parse(data: bytes, stop_before_pixels: bool) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd but readable headers are the norm in archives
        try:
            return pydicom.dcmread(BytesIO(data), stop_before_pixels=stop_before_pixels, force=True)
        except Exception as exc:
            raise InvalidDicomError(f"the stored header cannot be read: {exc}") from exc


#: Given an instance, another stored encoding of it that decodes faster, or None
#: (services/derived.py: HTJ2K copies).
CopyLookup = Callable[[StoredInstance], StoredInstance | None]


class PixelService:
    def __init__(
        self,
        retrieve: RetrieveService,
        outputs: RenderedOutputs | None = None,
        copies: CopyLookup | None = None,
        decoded_bytes: int = DECODED_FRAMES_BYTES,
    ) -> None:
        self.retrieve = retrieve
        #: Rendered outputs kept in the cache port (services/caching.py), when there is one.
        self.outputs = outputs
        self.copies = copies
        self._headers: OrderedDict[str, tuple[Dataset, ImageInfo, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded_bytes = decoded_bytes
        self._decoded: OrderedDict[str, Decoded] = OrderedDict()
        self._decoded_size = 0

    # --- reading ---------------------------------------------------------------------------

    def source(self, instance: StoredInstance) -> Source:
        """The header and frames of an image instance; NotFoundError when it has no pixels.
        Frames come from the instance's fast copy when one exists (same pixel values)."""
        if self.copies is not None and (copy := self.copies(instance)) is not None:
            instance = copy
        layout = instance.pixel
        if layout is None or not layout.frames:
            return self._whole(instance)
        key = f"{instance.blob_key}:{instance.sha256}"
        stored = instance

        def load_header() -> Dataset:
            head = self.retrieve.blobs.get_range(stored.blob_key, 0, layout.value_offset)
            return _parse(head, stop_before_pixels=True)

        with self._lock:
            cached = self._headers.get(key)
            if cached is not None:
                self._headers.move_to_end(key)
        header: Dataset | None = None
        if cached is None:
            head = self.retrieve.blobs.get_range(instance.blob_key, 0, layout.value_offset)
            header = _parse(head, stop_before_pixels=True)
            syntax = instance.transfer_syntax_uid
            little = syntax != EXPLICIT_VR_BE
            info = image_info(header, syntax, little)
            swap = (
                not little
                and info.bits_allocated == 8
                and head[layout.value_offset - 8 : layout.value_offset - 6] == b"OW"
            )
            cached = (_summary(header), info, swap)
            with self._lock:
                self._headers[key] = cached
                while len(self._headers) > _HEADERS_KEPT:
                    self._headers.popitem(last=False)
        summary, info, swap = cached
        frames = layout.frames
        compressed = sum(length for frame in frames for _, length in frame)

        def read(number: int) -> bytes:
            if swap:
                return self._swapped_frame(instance, info, number)
            return b"".join(self.retrieve.frame(instance, number))

        source = Source(summary, info, len(frames), compressed, read, key, load_header)
        if header is not None:
            source._header = header  # just parsed: no need to read it again
        return source

    def _swapped_frame(self, instance: StoredInstance, info: ImageInfo, number: int) -> bytes:
        """8-bit samples in a big endian OW value are byte-swapped in 16-bit words (PS3.5
        8.1.1, Explicit VR Big Endian): the whole value is read and put back in order."""
        layout = instance.pixel
        assert layout is not None
        value = self.retrieve.blobs.get_range(
            instance.blob_key, layout.value_offset, layout.value_length
        )
        even = len(value) - len(value) % 2
        ordered = np.frombuffer(value[:even], dtype=np.uint8).reshape(-1, 2)[:, ::-1].tobytes()
        size = info.frame_size
        return ordered[(number - 1) * size : number * size]

    def _whole(self, instance: StoredInstance) -> Source:
        data = b"".join(self.retrieve.object_bytes(instance))
        dataset = _parse(data, stop_before_pixels=False)
        pixel_data = dataset.get("PixelData")
        if pixel_data is None:
            raise NoPixelDataError(f"instance {instance.sop_uid} has no pixel data")
        syntax = str(dataset.file_meta.get("TransferSyntaxUID", instance.transfer_syntax_uid))
        info = image_info(dataset, syntax, syntax != EXPLICIT_VR_BE)
        found = SYNTAXES.get(syntax)
        frames: list[bytes]
        if found is not None and found.encapsulated:
            frames = list(generate_frames(pixel_data, number_of_frames=info.frames))
        elif info.bits_allocated == 1:
            frames = [bytes(pixel_data)] * info.frames
        else:
            size = info.frame_size
            frames = [
                bytes(pixel_data[i * size : (i + 1) * size])
                for i in range(info.frames)
                if (i + 1) * size <= len(pixel_data)
            ]
        del dataset["PixelData"]

        def read(number: int) -> bytes:
            if not 1 <= number <= len(frames):
                raise NotFoundError(f"frame {number} does not exist")
            return frames[number - 1]

        key = f"{instance.blob_key}:{instance.sha256}"
        source = Source(_summary(dataset), info, len(frames), sum(map(len, frames)), read, key)
        source._header = dataset
        return source

    def decode(self, source: Source, number: int, keep: bool = True) -> Decoded:
        """Frame `number` (1-based) decoded to stored values. Recently decoded frames are
        kept in memory (bounded in bytes), since a viewer re-renders one frame with other
        windows and sizes; `keep=False` for one-pass work such as transcoding."""
        if not 1 <= number <= source.frame_count:
            raise NotFoundError(
                f"frame {number} does not exist (instance has {source.frame_count} frames)"
            )
        key = f"{source.key}:{number}"
        with self._lock:
            found = self._decoded.get(key)
            if found is not None:
                self._decoded.move_to_end(key)
                return found
        decoded = codec.decode(source.info, source.read_frame(number), number - 1)
        size = decoded.array.nbytes
        if keep and source.key and size <= self.decoded_bytes // 4:
            with self._lock:
                if key not in self._decoded:
                    decoded.array.flags.writeable = False  # shared from now on
                    self._decoded[key] = decoded
                    self._decoded_size += size
                while self._decoded_size > self.decoded_bytes:
                    _, dropped = self._decoded.popitem(last=False)
                    self._decoded_size -= dropped.array.nbytes
        return decoded

    def frames(self, source: Source) -> Iterator[Decoded]:
        for number in range(1, source.frame_count + 1):
            yield self.decode(source, number, keep=False)

    # --- transcoding -----------------------------------------------------------------------

    def transcode(self, instance: StoredInstance, target: str) -> Iterator[bytes]:
        """The instance as a PS3.10 file in `target`, streamed; CodecError before the first
        byte when the target cannot hold the image. An object without pixel data is only
        re-encoded: encapsulated syntaxes encode everything but Pixel Data as Explicit VR
        Little Endian (PS3.5 A.4), so its data set is valid in any of them."""
        if not can_encode(target):
            raise CodecError(f"the archive does not write transfer syntax {target}")
        try:
            source = self.source(instance)
        except NoPixelDataError:
            return iter([self._plain(instance, target)])
        transcode.check_target(source.info, target)
        return transcode.stream(
            source.header,
            source.info,
            self.frames(source),
            target,
            source.frame_count,
            source.compressed_bytes,
        )

    def _plain(self, instance: StoredInstance, target: str) -> bytes:
        dataset = _parse(b"".join(self.retrieve.object_bytes(instance)), False)
        return transcode.rewrite_header(dataset, None, None, target)

    def frame_in(self, instance: StoredInstance, number: int, target: str) -> bytes:
        """Frame `number` in `target` (PS3.18 8.7.3.3.2), decoded and re-encoded."""
        source = self.source(instance)
        transcode.check_target(source.info, target)
        return transcode.encode_frame(self.decode(source, number), source.info, target)

    # --- rendering (PS3.18 8.3.5, 8.7.4) ------------------------------------------------

    def frame_count(self, instance: StoredInstance) -> int:
        return self.source(instance).frame_count

    def render(
        self,
        instance: StoredInstance,
        numbers: list[int],
        options: render.RenderOptions,
        fit: int | None = None,
    ) -> bytes:
        """Frames `numbers` (1-based) rendered and encoded: one image, or an animated GIF or
        a video of all of them (at the object's frame time, `frame_time_ms`)."""
        if options.media_type not in render.MULTI_FRAME_TYPES:
            numbers = numbers[:1]
        variant = render.variant(numbers, options, fit)
        if self.outputs is not None:
            kept = self.outputs.get(instance, variant)
            if kept is not None:
                return kept
        source = self.source(instance)
        animation = len(numbers) > 1
        if animation:
            info = source.info
            render.check_animation_bounds(
                len(numbers), info.rows, info.columns, info.samples, options
            )
        images = []
        for number in numbers:
            # The frames of an animation are one-pass work: they do not evict a viewer's.
            decoded = self.decode(source, number, keep=not animation)
            shown = render.display(decoded, source.info.for_frame(number), options.window)
            image = render.region_and_viewport(shown, options.viewport, fit)
            if options.annotations:
                left, right = annotation_text(source, number, options)
                image = render.annotate(image, left, right)
            images.append(image)
        frame_time = (
            1000.0 / options.frame_rate if options.frame_rate else frame_time_ms(source.summary)
        )
        output = render.encode(images, options.media_type, options.quality, frame_time)
        if self.outputs is not None:
            self.outputs.put(instance, variant, output)
        return output

    @staticmethod
    def etag(instance: StoredInstance, representation: str) -> str:
        """A strong entity tag (RFC 9110 8.8.3) for a representation of an instance: the
        stored bytes' SHA-256 and what was derived from them identify it exactly."""
        digest = hashlib.sha256(f"{instance.sha256}|{representation}".encode()).hexdigest()
        return f'"{digest[:32]}"'

    def can_transcode(self, instance: StoredInstance, target: str) -> bool:
        """Whether `transcode` (or `frame_in`) would succeed for this instance and target."""
        if instance.transfer_syntax_uid == target:
            return True
        if not can_encode(target):
            return False
        try:
            transcode.check_target(self.source(instance).info, target)
        except NoPixelDataError:
            return True
        except (CodecError, InvalidDicomError, NotFoundError):
            return False
        return True


def _text(value: object) -> str:
    return str(value).replace("^", " ").strip() if value not in (None, "") else ""


def annotation_text(
    source: Source, number: int, options: render.RenderOptions
) -> tuple[list[str], list[str]]:
    """The lines of PS3.18 8.3.5.1.1 annotations: "patient" (name, ID, birth date, sex) at
    the top left, "technique" (modality and date, series, window, frame) at the top right."""
    header, info = source.summary, source.info
    left: list[str] = []
    right: list[str] = []
    if "patient" in options.annotations:
        left = [
            _text(header.get("PatientName")),
            _text(header.get("PatientID")),
            " ".join(
                x
                for x in (_text(header.get("PatientBirthDate")), _text(header.get("PatientSex")))
                if x
            ),
        ]
    if "technique" in options.annotations:
        right = [
            " ".join(
                x for x in (_text(header.get("Modality")), _text(header.get("StudyDate"))) if x
            ),
            _text(header.get("SeriesDescription")),
        ]
        shown = info.for_frame(number)
        window = options.window or (
            render.Window(*shown.windows[0]) if shown.windows and shown.windows[0][1] >= 1 else None
        )
        if window is not None and info.samples == 1:
            right.append(f"W {window.width:g} C {window.center:g}")
        if source.frame_count > 1:
            right.append(f"frame {number}/{source.frame_count}")
    return left, right


def frame_time_ms(header: Dataset) -> float | None:
    """How long each frame is shown: Frame Time (0018,1063, PS3.3 C.7.6.5), else the
    Recommended Display Frame Rate (0008,2144) or Cine Rate (0018,0040) in frames per second,
    else the mean of the Frame Time Vector (0018,1065)."""
    frame_time = _float(header.get("FrameTime"))
    if frame_time and frame_time > 0:
        return frame_time
    for keyword in ("RecommendedDisplayFrameRate", "CineRate"):
        rate = _float(header.get(keyword))
        if rate and rate > 0:
            return 1000.0 / rate
    vector = header.get("FrameTimeVector")
    if vector:
        times = [t for t in (_float(v) for v in vector) if t and t > 0]
        if times:
            return sum(times) / len(times)
    return None


def _float(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
