"""Colour models to RGB for display (PS3.3 C.7.6.3.1.2 and C.7.6.3.1.5)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hounsfield.services.pixels.image import Lut


def ybr_full_to_rgb(array: np.ndarray[Any, Any], bits: int) -> np.ndarray[Any, Any]:
    """YBR_FULL to RGB with the equations of PS3.3 C.7.6.3.1.2 (ITU-R BT.601, full range),
    in floating point and rounded; the result keeps the input's container type."""
    half = float(1 << (bits - 1))
    top = float((1 << bits) - 1)
    y = array[..., 0].astype(np.float32)
    cb = array[..., 1].astype(np.float32) - half
    cr = array[..., 2].astype(np.float32) - half
    rgb = np.empty(array.shape, dtype=np.float32)
    rgb[..., 0] = y + 1.402 * cr
    rgb[..., 1] = y - 0.344136 * cb - 0.714136 * cr
    rgb[..., 2] = y + 1.772 * cb
    return np.clip(np.rint(rgb), 0, top).astype(array.dtype)


def palette_to_rgb(
    array: np.ndarray[Any, Any], palette: tuple[Lut, Lut, Lut]
) -> np.ndarray[Any, Any]:
    """PALETTE COLOR through its three tables (PS3.3 C.7.6.3.1.5), as 8-bit RGB: entries of
    16-bit tables keep their high byte."""
    channels = []
    for lut in palette:
        values = lut.apply(array)
        if lut.bits > 8 or values.max(initial=0) > 255:
            values = values >> 8
        channels.append(values.astype(np.uint8))
    return np.stack(channels, axis=-1)


def to_rgb(
    array: np.ndarray[Any, Any], photometric: str, bits: int, palette: tuple[Lut, Lut, Lut] | None
) -> np.ndarray[Any, Any]:
    """Any colour frame as RGB in its container type (PALETTE COLOR as 8-bit)."""
    if photometric == "PALETTE COLOR" and palette is not None:
        return palette_to_rgb(array, palette)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        return ybr_full_to_rgb(array, bits)
    return array
