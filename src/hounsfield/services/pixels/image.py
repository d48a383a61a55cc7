"""What a frame's bytes mean: the Image Pixel module (PS3.3 C.7.6.3) and the attributes of the
rendering pipeline (PS3.3 C.11.1 Modality LUT, C.11.2 VOI LUT, C.11.6 Presentation LUT,
C.7.5.1.1.2 Pixel Padding Value, C.7.6.3.1.5 palette colour tables), read once from a header.

Enhanced multi-frame objects (PS3.3 C.7.6.16) carry the rescale and the window in functional
groups instead of at the top level: the Pixel Value Transformation (C.7.6.16.2.9) and Frame VOI
LUT (C.7.6.16.2.10) macros, in the Shared Functional Groups Sequence for every frame or in each
item of the Per-frame Functional Groups Sequence (C.7.6.16.1.1: a macro is in one or the
other). `ImageInfo.for_frame` gives the description that applies to one frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from hounsfield.domain.errors import InvalidDicomError


@dataclass(frozen=True, slots=True)
class Lut:
    """A LUT as in PS3.3 C.11.1.1.1: entries, first input value mapped, bits per entry."""

    first: int
    bits: int
    data: np.ndarray[Any, Any]

    def apply(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Inputs below the first value take the first entry, above the last the last."""
        index = np.clip(values.astype(np.int64) - self.first, 0, len(self.data) - 1)
        result: np.ndarray[Any, Any] = self.data[index]
        return result


@dataclass(frozen=True, slots=True)
class FrameValues:
    """The Pixel Value Transformation and Frame VOI LUT values of one frame (None: as the
    image's)."""

    rescale: tuple[float, float] | None = None
    windows: tuple[tuple[float, float], ...] | None = None
    voi_function: str | None = None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """The Image Pixel description of an instance, plus what rendering needs."""

    transfer_syntax: str
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int
    frames: int
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    modality_lut: Lut | None = None
    windows: tuple[tuple[float, float], ...] = ()
    voi_function: str = "LINEAR"
    voi_luts: tuple[Lut, ...] = ()
    presentation_inverse: bool = False
    padding: tuple[int, int] | None = None
    palette: tuple[Lut, Lut, Lut] | None = None
    lossy: bool = False
    #: Per-frame functional group values (Enhanced objects), one per frame; empty otherwise.
    per_frame: tuple[FrameValues, ...] = ()

    def for_frame(self, number: int) -> ImageInfo:
        """The description of frame `number` (1-based): the image's, with the rescale and
        window of its Per-frame Functional Groups item when it has them."""
        if not 1 <= number <= len(self.per_frame):
            return self
        values = self.per_frame[number - 1]
        changes: dict[str, Any] = {}
        if values.rescale is not None:
            changes["rescale_slope"], changes["rescale_intercept"] = values.rescale
        if values.windows is not None:
            changes["windows"] = values.windows
        if values.voi_function is not None:
            changes["voi_function"] = values.voi_function
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def frame_size(self) -> int:
        """Bytes of one native frame (YBR_FULL_422 carries two samples per pixel)."""
        samples = 2 if self.photometric == "YBR_FULL_422" and self.samples == 3 else self.samples
        return self.rows * self.columns * samples * self.bits_allocated // 8

    @property
    def dtype(self) -> np.dtype[Any]:
        """The array type of decoded stored values (PS3.5 8.1.1: one sample per container)."""
        if self.bits_allocated == 1:
            return np.dtype(np.uint8)
        size = {8: 1, 16: 2, 32: 4, 64: 8}.get(self.bits_allocated)
        if size is None:
            raise InvalidDicomError(f"Bits Allocated {self.bits_allocated} is not supported")
        return np.dtype(f"{'i' if self.signed else 'u'}{size}")

    @property
    def shape(self) -> tuple[int, ...]:
        if self.samples == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples)


def _int(ds: Dataset, keyword: str, default: int) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidDicomError(f"{keyword} {value!r} is not an integer") from exc


def _floats(value: Any) -> list[float]:
    if value is None or value == "":
        return []
    items: Sequence[Any] = (
        value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    )
    out: list[float] = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            continue
    return out


def _lut(
    item: Dataset, descriptor_kw: str, data_kw: str, signed_first: bool, little: bool = True
) -> Lut | None:
    """LUT Descriptor (entries, first value, bits) and LUT Data (PS3.3 C.11.1.1.1): 0 entries
    means 65536; the first value is signed when the mapped input is signed."""
    descriptor = item.get(descriptor_kw)
    raw = item.get(data_kw)
    if descriptor is None or raw is None or len(descriptor) != 3:
        return None
    entries, first, bits = (int(v) for v in descriptor)
    entries = entries or 65536
    if signed_first and first >= 32768:
        first -= 65536
    if isinstance(raw, bytes | bytearray):
        words = bits > 8 or len(raw) >= 2 * entries
        data = np.frombuffer(raw, dtype=("<u2" if little else ">u2") if words else "u1")
    else:
        data = np.asarray(list(raw) if not isinstance(raw, int) else [raw], dtype=np.int64)
    data = data[:entries].astype(np.int64)
    if len(data) == 0:
        return None
    return Lut(first, bits, data)


def _windows(item: Dataset) -> tuple[tuple[float, float], ...]:
    """Window Center / Width pairs (PS3.3 C.11.2.1.2); a width below 1 is not a window."""
    return tuple(
        (c, w)
        for c, w in zip(
            _floats(item.get("WindowCenter")), _floats(item.get("WindowWidth")), strict=False
        )
        if w > 0
    )


def _voi_function(item: Dataset) -> str:
    return str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()


def _first(ds: Dataset, keyword: str) -> Dataset | None:
    """The first item of a sequence (the macros here have exactly one), None without one."""
    items = ds.get(keyword, None) or []
    return items[0] if len(items) else None


def _group_values(group: Dataset | None) -> FrameValues:
    """The Pixel Value Transformation and Frame VOI LUT macros of one functional groups item."""
    if group is None:
        return FrameValues()
    rescale = None
    transformation = _first(group, "PixelValueTransformationSequence")
    if transformation is not None:
        slope = _floats(transformation.get("RescaleSlope"))
        intercept = _floats(transformation.get("RescaleIntercept"))
        if slope or intercept:
            rescale = ((slope or [1.0])[0] or 1.0, (intercept or [0.0])[0])
    windows = function = None
    voi = _first(group, "FrameVOILUTSequence")
    if voi is not None:
        windows = _windows(voi) or None
        function = _voi_function(voi) if "VOILUTFunction" in voi else None
    return FrameValues(rescale, windows, function)


def image_info(ds: Dataset, transfer_syntax: str, little_endian: bool = True) -> ImageInfo:
    """Read the description from a header (no pixel data needed); a missing mandatory
    Image Pixel attribute is a 4xx-grade error, not a crash."""
    rows = _int(ds, "Rows", 0)
    columns = _int(ds, "Columns", 0)
    if rows <= 0 or columns <= 0:
        raise InvalidDicomError("the instance has no image (Rows/Columns missing)")
    samples = _int(ds, "SamplesPerPixel", 1)
    bits_allocated = _int(ds, "BitsAllocated", 0)
    bits_stored = _int(ds, "BitsStored", bits_allocated)
    signed = _int(ds, "PixelRepresentation", 0) == 1
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not photometric:
        photometric = "MONOCHROME2" if samples == 1 else "RGB"
    windows = _windows(ds)
    voi_function = _voi_function(ds)
    voi_luts = tuple(
        lut
        for item in ds.get("VOILUTSequence", [])
        if (lut := _lut(item, "LUTDescriptor", "LUTData", signed, little_endian)) is not None
    )
    modality_lut = None
    for item in ds.get("ModalityLUTSequence", []):
        modality_lut = _lut(item, "LUTDescriptor", "LUTData", signed, little_endian)
        break
    padding = None
    if "PixelPaddingValue" in ds and ds.PixelPaddingValue is not None:
        low = int(ds.PixelPaddingValue)
        high = int(ds.get("PixelPaddingRangeLimit", low) or low)
        if signed and bits_allocated in (8, 16):
            # Written as US by some modalities although the pixels are signed (PS3.3
            # C.7.5.1.1.2: the value has the Pixel Representation of the pixels).
            top = 1 << bits_allocated
            low, high = (v - top if v >= top >> 1 else v for v in (low, high))
        padding = (min(low, high), max(low, high))
    palette = None
    if photometric == "PALETTE COLOR":
        tables = [
            _lut(
                ds,
                f"{c}PaletteColorLookupTableDescriptor",
                f"{c}PaletteColorLookupTableData",
                False,
                little_endian,
            )
            for c in ("Red", "Green", "Blue")
        ]
        red, green, blue = tables
        if red is None or green is None or blue is None:
            raise InvalidDicomError("PALETTE COLOR image without its colour lookup tables")
        palette = (red, green, blue)
    slope = _floats(ds.get("RescaleSlope")) or [1.0]
    intercept = _floats(ds.get("RescaleIntercept")) or [0.0]
    shared = _group_values(_first(ds, "SharedFunctionalGroupsSequence"))
    if shared.rescale is not None:
        slope, intercept = [shared.rescale[0]], [shared.rescale[1]]
    if shared.windows is not None:
        windows = shared.windows
    if shared.voi_function is not None:
        voi_function = shared.voi_function
    per_frame = tuple(
        _group_values(item) for item in ds.get("PerFrameFunctionalGroupsSequence", None) or []
    )
    if all(v == FrameValues() for v in per_frame):
        per_frame = ()
    return ImageInfo(
        transfer_syntax=transfer_syntax,
        rows=rows,
        columns=columns,
        samples=samples,
        bits_allocated=bits_allocated,
        bits_stored=min(bits_stored, bits_allocated) or bits_allocated,
        signed=signed,
        photometric=photometric,
        planar=_int(ds, "PlanarConfiguration", 0),
        frames=max(_int(ds, "NumberOfFrames", 1), 1),
        rescale_slope=slope[0] or 1.0,
        rescale_intercept=intercept[0],
        modality_lut=modality_lut,
        windows=windows,
        voi_function=voi_function,
        voi_luts=voi_luts,
        presentation_inverse=str(ds.get("PresentationLUTShape", "") or "").strip() == "INVERSE",
        padding=padding,
        palette=palette,
        lossy=str(ds.get("LossyImageCompression", "") or "").strip() == "01",
        per_frame=per_frame,
    )
