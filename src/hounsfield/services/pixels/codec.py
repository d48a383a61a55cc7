"""Decode and encode one frame, whatever its transfer syntax (PS3.5 8, Annex A.4).

imagecodecs does the work (libjpeg-turbo, CharLS, OpenJPEG, OpenJPH, PackBits): it releases
the GIL, so frames decode in parallel on worker threads (DESIGN.md section 4). pydicom's pixel
handlers read the syntaxes imagecodecs cannot (see `decode_with_pydicom`).

A decoded frame is an array of stored values in the container type of Bits Allocated and Pixel
Representation (rows, columns[, samples]), masked to Bits Stored and sign-extended (PS3.5 8.1.1,
PS3.3 C.7.6.3.1), samples interleaved, and the Photometric Interpretation that the array is in:
lossy JPEG and JPEG 2000 with a multi-component transform come out as RGB, native YBR_FULL_422
is upsampled to YBR_FULL (PS3.3 C.7.6.3.1.2), so that the array is the same whatever the source.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import imagecodecs
import numpy as np

from hounsfield.domain.errors import InvalidDicomError
from hounsfield.services.pixels import rle
from hounsfield.services.pixels.image import ImageInfo
from hounsfield.services.pixels.syntaxes import (
    EXPLICIT_VR_LE,
    HTJ2K,
    HTJ2K_LOSSLESS,
    HTJ2K_LOSSLESS_RPCL,
    IMPLICIT_VR_LE,
    J2K_LOSSLESS,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
    SYNTAXES,
)


class CodecError(Exception):
    """A frame that cannot be decoded or encoded as asked (the caller answers 406 or 500)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    array: np.ndarray[Any, Any]
    photometric: str


def _unsigned(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(f"u{dtype.itemsize}")


def normalize(array: np.ndarray[Any, Any], info: ImageInfo) -> np.ndarray[Any, Any]:
    """Bring decoder output to the stored-value convention: container type of Bits Allocated,
    bits above Bits Stored cleared, two's complement sign extension when Pixel Representation
    is 1 (PS3.5 8.1.1; JPEG-LS and some JPEG 2000 streams carry signed data as unsigned)."""
    target = info.dtype
    if info.bits_allocated == 1:
        return array.astype(np.uint8, copy=False)
    raw = array.astype(_unsigned(array.dtype), copy=False) if array.dtype.kind == "i" else array
    values = raw.astype(_unsigned(target), copy=False)
    stored = info.bits_stored
    width = target.itemsize * 8
    if stored < width:
        values = values & np.array((1 << stored) - 1, dtype=values.dtype)
        if info.signed:
            shift = width - stored
            signed: np.ndarray[Any, Any] = (values << shift).view(target) >> shift
            return signed
    result: np.ndarray[Any, Any] = values.view(target) if info.signed else values
    return result


def _native(info: ImageInfo, data: bytes, index: int, little: bool) -> Decoded:
    if info.bits_allocated == 1:
        count = info.rows * info.columns * info.samples
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        start = (index * count) % 8
        if len(bits) < start + count:
            raise CodecError("native frame shorter than Rows x Columns")
        return Decoded(bits[start : start + count].reshape(info.shape), info.photometric)
    if len(data) < info.frame_size:
        raise CodecError(f"native frame has {len(data)} bytes, {info.frame_size} expected")
    dtype = info.dtype.newbyteorder("<" if little else ">")
    if info.photometric == "YBR_FULL_422" and info.samples == 3:
        return Decoded(
            _upsample_422(np.frombuffer(data[: info.frame_size], dtype), info), "YBR_FULL"
        )
    flat = np.frombuffer(data[: info.frame_size], dtype=dtype)
    if info.samples > 1 and info.planar == 1:
        array = flat.reshape(info.samples, info.rows, info.columns).transpose(1, 2, 0)
    else:
        array = flat.reshape(info.shape)
    return Decoded(normalize(array.astype(info.dtype), info), info.photometric)


def _upsample_422(flat: np.ndarray[Any, Any], info: ImageInfo) -> np.ndarray[Any, Any]:
    """PS3.3 C.7.6.3.1.2: YBR_FULL_422 stores Y1 Y2 Cb Cr for each horizontal pixel pair."""
    columns = info.columns
    pairs = flat[: info.rows * columns * 2].reshape(info.rows, -1, 4)
    out = np.empty((info.rows, pairs.shape[1] * 2, 3), dtype=info.dtype)
    out[:, 0::2, 0] = pairs[:, :, 0]
    out[:, 1::2, 0] = pairs[:, :, 1]
    for sample, source in ((1, 2), (2, 3)):
        out[:, 0::2, sample] = pairs[:, :, source]
        out[:, 1::2, sample] = pairs[:, :, source]
    return out[:, :columns]


def _jpeg(info: ImageInfo, data: bytes) -> Decoded:
    """JPEG (PS3.5 A.4.1, 8.2.1). libjpeg converts YCbCr to RGB when the stream says it holds
    YCbCr; a stream labelled RGB without a JFIF or Adobe marker holds RGB and is read as such;
    lossless streams are never colour-transformed."""
    lossless = info.transfer_syntax in (JPEG_LOSSLESS, JPEG_LOSSLESS_SV1)
    force_rgb = info.samples == 3 and (lossless or _holds_rgb(data[:1024], info.photometric))
    errors: list[str] = []
    array: np.ndarray[Any, Any] | None
    try:
        if force_rgb:
            array = imagecodecs.jpeg8_decode(data, colorspace="RGB", outcolorspace="RGB")
        else:
            array = imagecodecs.jpeg8_decode(data)
    except Exception as exc:  # libjpeg-turbo refuses a few lossless predictors and precisions
        errors.append(f"libjpeg-turbo: {exc}")
        array = None
        # jpegsof3 reads lossless streams libjpeg-turbo refuses; liblj92 (ljpeg) is not used:
        # it crashes the process on damaged streams (tests/unit/test_codec_fuzz.py).
        try:
            array = imagecodecs.jpegsof3_decode(data)
        except Exception as other:
            errors.append(f"jpegsof3: {other}")
        if array is None:
            raise CodecError("; ".join(errors)) from exc
    assert array is not None
    photometric = info.photometric
    if info.samples == 3 and not force_rgb:
        photometric = "RGB"
    return Decoded(normalize(_shape(array, info), info), photometric)


def _holds_rgb(head: bytes, photometric: str) -> bool:
    """Whether a 3-component lossy JPEG stream holds RGB rather than YCbCr: an Adobe APP14
    marker says so in its transform flag (0 = none), a JFIF marker means YCbCr, and without
    either the Photometric Interpretation decides (PS3.5 8.2.1)."""
    adobe = head.find(b"Adobe")
    # The segment length counts itself, "Adobe", version, two flag words and the transform.
    if adobe >= 2 and int.from_bytes(head[adobe - 2 : adobe], "big") >= 14:
        return head[adobe + 11] == 0
    if b"JFIF" in head:
        return False
    return photometric == "RGB"


def _shape(array: np.ndarray[Any, Any], info: ImageInfo) -> np.ndarray[Any, Any]:
    if array.shape[:2] != (info.rows, info.columns):
        raise CodecError(
            f"decoded frame is {array.shape[1]}x{array.shape[0]}, "
            f"header says {info.columns}x{info.rows}"
        )
    if info.samples == 1 and array.ndim == 3:
        return array[..., 0]
    return array


def _j2k(info: ImageInfo, data: bytes) -> Decoded:
    """JPEG 2000 and HTJ2K (PS3.5 A.4.4, A.4.7): OpenJPEG reads both and applies the inverse
    multi-component transform, so YBR_RCT and YBR_ICT come out as RGB (PS3.5 8.2.4)."""
    # OpenJPH decodes HTJ2K about twice as fast as OpenJPEG; OpenJPEG reads both.
    first: Callable[[bytes], np.ndarray[Any, Any]] = imagecodecs.jpeg2k_decode
    # OpenJPH returns components planar unless told otherwise.
    second: Callable[[bytes], np.ndarray[Any, Any]] = partial(
        imagecodecs.htj2k_decode, planar=False
    )
    if info.transfer_syntax in (HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL, HTJ2K):
        first, second = second, first
    try:
        array = first(data)
    except Exception as exc:
        try:
            array = second(data)
        except Exception:
            raise CodecError(f"JPEG 2000: {exc}") from exc
    photometric = info.photometric
    if photometric in ("YBR_RCT", "YBR_ICT"):
        photometric = "RGB"
    return Decoded(normalize(_shape(array, info), info), photometric)


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def declared_size(data: bytes, family: str) -> tuple[int, int] | None:
    """(rows, columns) from a codestream's header, without decoding: the JPEG and JPEG-LS
    frame header (ITU T.81 B.2.2, T.87 C.2.2) or the JPEG 2000 SIZ segment (T.800 A.5.1).
    Checked against the DICOM header before decoding, so that a damaged or hostile stream
    cannot make a decoder allocate an image of its choosing (DESIGN.md section 6)."""
    if family == "j2k":
        siz = data.find(b"\xff\x51", 0, 256)
        if siz < 0 or len(data) < siz + 22:
            return None
        x, y, x0, y0 = struct.unpack(">4L", data[siz + 6 : siz + 22])
        return y - y0, x - x0
    position = 2
    while position + 9 <= min(len(data), 1 << 16):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _JPEG_SOF or marker == 0xF7:  # SOFn, or JPEG-LS SOF55
            rows, columns = struct.unpack(">HH", data[position + 5 : position + 9])
            return (rows, columns) if rows else None
        position += 2 + length
    return None


def strip_spiff(data: bytes) -> bytes:
    """A JPEG-LS stream without its SPIFF header (ITU T.87 Annex G), which CharLS writes by
    default and which DICOM streams do not carry; a damaged SPIFF directory also makes CharLS
    spin for seconds. The directory ends with an SOI marker, where the codestream resumes."""
    if data[2:4] != b"\xff\xe8" or data[6:11] != b"SPIFF":
        return data
    resume = data.find(b"\xff\xd8", 4)
    return data if resume < 0 else data[:2] + data[resume + 2 :]


def _check_size(info: ImageInfo, data: bytes, family: str) -> None:
    size = declared_size(data, family)
    if size is not None and size != (info.rows, info.columns):
        raise CodecError(
            f"the codestream holds a {size[1]}x{size[0]} image, the header says "
            f"{info.columns}x{info.rows}"
        )


def decode(info: ImageInfo, data: bytes, index: int = 0) -> Decoded:
    """Decode frame `index` (0-based, used for bit-packed native data) from its bytes."""
    found = SYNTAXES.get(info.transfer_syntax)
    if found is None:
        raise CodecError(f"transfer syntax {info.transfer_syntax} cannot be decoded")
    try:
        if found.decoder == "native":
            return _native(info, data, index, found.little_endian)
        if found.decoder == "rle":
            raw = rle.decode(data, info.rows, info.columns, info.samples, info.bits_allocated)
            flat = np.frombuffer(raw, dtype=info.dtype.newbyteorder("<"))
            return Decoded(normalize(flat.reshape(info.shape), info), info.photometric)
        _check_size(info, data, found.decoder)
        if found.decoder == "jpeg":
            return _jpeg(info, data)
        if found.decoder == "jpegls":
            array = imagecodecs.jpegls_decode(strip_spiff(data))
            return Decoded(normalize(_shape(array, info), info), info.photometric)
        return _j2k(info, data)
    except (CodecError, InvalidDicomError):
        raise
    except Exception as exc:
        raise CodecError(f"{found.name}: {exc}") from exc


# --- encoding ----------------------------------------------------------------------------


def output_photometric(photometric: str, samples: int, target: str) -> str:
    """The Photometric Interpretation of frames written in `target` (PS3.5 8.2): colour
    JPEG 2000 and HTJ2K streams use the reversible colour transform, hence YBR_RCT."""
    if (
        samples == 3
        and photometric == "RGB"
        and target
        in (
            J2K_LOSSLESS,
            HTJ2K_LOSSLESS,
            HTJ2K_LOSSLESS_RPCL,
        )
    ):
        return "YBR_RCT"
    return photometric


def encode(decoded: Decoded, info: ImageInfo, target: str) -> bytes:
    """Encode a decoded frame in a lossless or native syntax; native output is the little
    endian container bytes (bit-packed 1-bit data is packed by the caller across frames)."""
    array = decoded.array
    if target in (EXPLICIT_VR_LE, IMPLICIT_VR_LE):
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    if info.bits_allocated == 1:
        raise CodecError("1-bit images are only written in native syntaxes")
    if info.photometric == "YBR_FULL_422" and decoded.photometric == "YBR_FULL":
        pass  # upsampled: written as YBR_FULL
    rgb = output_photometric(decoded.photometric, info.samples, target) == "YBR_RCT"
    try:
        if target == RLE_LOSSLESS:
            return rle.encode(array)
        if target == JPEG_LS_LOSSLESS:
            if info.bits_stored > 16:
                raise CodecError("JPEG-LS holds at most 16 bits per sample")
            # PS3.5 A.4.3 / 8.2.3: signed samples are encoded as their unsigned bit pattern.
            mask = np.array((1 << info.bits_stored) - 1, dtype=_unsigned(array.dtype))
            values = array.view(_unsigned(array.dtype)) & mask
            return strip_spiff(bytes(imagecodecs.jpegls_encode(np.ascontiguousarray(values))))
        if target == J2K_LOSSLESS:
            if info.bits_stored > 24:
                raise CodecError("JPEG 2000 here holds at most 24 bits per sample")
            return bytes(
                imagecodecs.jpeg2k_encode(
                    np.ascontiguousarray(array),
                    level=0,
                    codecformat="J2K",
                    reversible=True,
                    mct=rgb,
                    bitspersample=info.bits_stored,
                )
            )
        if target in (HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL):
            if info.bits_stored > 24:
                raise CodecError("HTJ2K here holds at most 24 bits per sample")
            # PS3.5 A.4.7 (RPCL options): RPCL progression (OpenJPH's order), a TLM marker
            # segment and one tile-part per resolution.
            return bytes(
                imagecodecs.htj2k_encode(
                    np.ascontiguousarray(array), reversible=True, rgb=rgb, tlm=True, tilepart=1
                )
            )
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"cannot encode in {target}: {exc}") from exc
    raise CodecError(f"transfer syntax {target} cannot be written")
