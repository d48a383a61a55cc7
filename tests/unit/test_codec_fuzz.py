"""Damaged frames never crash the codec layer (DESIGN.md section 6): whatever the bytes, a
frame decodes to an array of the declared shape or raises CodecError / InvalidDicomError, for
every transfer syntax the archive reads. Inputs are real frames with bytes flipped, cut or
appended, and plain garbage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hounsfield.domain.errors import InvalidDicomError
from hounsfield.services.pixels import codec, rle
from hounsfield.services.pixels.codec import CodecError, Decoded
from hounsfield.services.pixels.image import ImageInfo
from hounsfield.services.pixels.syntaxes import (
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    HTJ2K_LOSSLESS_RPCL,
    J2K_LOSSLESS,
    JPEG_BASELINE,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
)

ROWS, COLUMNS = 24, 20


def _info(syntax: str, samples: int = 1, bits: int = 16) -> ImageInfo:
    return ImageInfo(
        transfer_syntax=syntax,
        rows=ROWS,
        columns=COLUMNS,
        samples=samples,
        bits_allocated=bits,
        bits_stored=bits if bits == 8 else 12,
        signed=False,
        photometric="MONOCHROME2" if samples == 1 else "RGB",
        planar=0,
        frames=1,
    )


def _valid_frames() -> dict[str, tuple[ImageInfo, bytes]]:
    import imagecodecs

    gray = (np.arange(ROWS * COLUMNS, dtype=np.uint16).reshape(ROWS, COLUMNS) * 9) % 4096
    rgb = np.stack([gray.astype(np.uint8)] * 3, axis=-1)
    return {
        EXPLICIT_VR_LE: (_info(EXPLICIT_VR_LE), gray.tobytes()),
        EXPLICIT_VR_BE: (_info(EXPLICIT_VR_BE), gray.astype(">u2").tobytes()),
        JPEG_BASELINE: (_info(JPEG_BASELINE, 3, 8), bytes(imagecodecs.jpeg8_encode(rgb))),
        JPEG_LOSSLESS_SV1: (
            _info(JPEG_LOSSLESS_SV1),
            bytes(imagecodecs.jpeg8_encode(gray, lossless=True, bitspersample=12)),
        ),
        JPEG_LS_LOSSLESS: (_info(JPEG_LS_LOSSLESS), bytes(imagecodecs.jpegls_encode(gray))),
        J2K_LOSSLESS: (
            _info(J2K_LOSSLESS),
            bytes(imagecodecs.jpeg2k_encode(gray, level=0, codecformat="J2K", reversible=True)),
        ),
        HTJ2K_LOSSLESS_RPCL: (
            _info(HTJ2K_LOSSLESS_RPCL),
            bytes(imagecodecs.htj2k_encode(gray, reversible=True)),
        ),
        RLE_LOSSLESS: (_info(RLE_LOSSLESS), rle.encode(gray)),
    }


VALID = _valid_frames()


def _check(info: ImageInfo, data: bytes) -> None:
    try:
        decoded = codec.decode(info, data)
    except (CodecError, InvalidDicomError):
        return
    assert isinstance(decoded, Decoded)
    assert decoded.array.shape == info.shape


@pytest.mark.parametrize("syntax", sorted(VALID))
def test_valid_frames_decode(syntax: str) -> None:
    info, data = VALID[syntax]
    assert codec.decode(info, data).array.shape == info.shape


# OpenJPH reports some damaged codestreams from inside a callback, which Python prints as
# an "exception ignored" before the decode call itself fails; that message is not a failure.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("syntax", sorted(VALID))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_frames_fail_cleanly(syntax: str, data: st.DataObject) -> None:
    info, frame = VALID[syntax]
    damaged = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        damaged[position] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(damaged)), label="cut")
    tail = data.draw(st.binary(max_size=16), label="tail")
    _check(info, bytes(damaged[:cut]) + tail)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("syntax", sorted(VALID))
@settings(max_examples=25, deadline=None)
@given(garbage=st.binary(max_size=2048))
def test_garbage_fails_cleanly(syntax: str, garbage: bytes) -> None:
    _check(VALID[syntax][0], garbage)
