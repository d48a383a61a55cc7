"""The transfer syntaxes the pixel services read and write, as data (PS3.5 Annex A, PS3.6 A).

`decoder` names the codec family that reads frames of the syntax; `encodable` says whether the
archive can write it (only lossless and native syntaxes: the archive never degrades an image on
its own, PS3.5 8.2 and PS3.3 C.7.6.1.1.5). `method` is the Lossy Image Compression Method
(0028,2114) Defined Term for lossy syntaxes (PS3.3 C.7.6.1.1.5.1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Syntax:
    uid: str
    name: str
    decoder: str  # "native", "jpeg", "jpegls", "j2k", "rle"
    encapsulated: bool
    lossy: bool = False
    little_endian: bool = True
    implicit_vr: bool = False
    deflated: bool = False
    encodable: bool = False
    method: str | None = None


IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

_SYNTAXES = (
    Syntax(
        IMPLICIT_VR_LE,
        "Implicit VR Little Endian",
        "native",
        False,
        implicit_vr=True,
        encodable=True,
    ),
    Syntax(EXPLICIT_VR_LE, "Explicit VR Little Endian", "native", False, encodable=True),
    Syntax(DEFLATED_LE, "Deflated Explicit VR Little Endian", "native", False, deflated=True),
    Syntax(EXPLICIT_VR_BE, "Explicit VR Big Endian", "native", False, little_endian=False),
    Syntax(
        JPEG_BASELINE, "JPEG Baseline (Process 1)", "jpeg", True, lossy=True, method="ISO_10918_1"
    ),
    Syntax(
        JPEG_EXTENDED,
        "JPEG Extended (Process 2 & 4)",
        "jpeg",
        True,
        lossy=True,
        method="ISO_10918_1",
    ),
    Syntax(JPEG_LOSSLESS, "JPEG Lossless (Process 14)", "jpeg", True),
    Syntax(JPEG_LOSSLESS_SV1, "JPEG Lossless SV1", "jpeg", True),
    Syntax(JPEG_LS_LOSSLESS, "JPEG-LS Lossless", "jpegls", True, encodable=True),
    Syntax(JPEG_LS_NEAR, "JPEG-LS Near-Lossless", "jpegls", True, lossy=True, method="ISO_14495_1"),
    Syntax(J2K_LOSSLESS, "JPEG 2000 (Lossless Only)", "j2k", True, encodable=True),
    Syntax(J2K, "JPEG 2000", "j2k", True, lossy=True, method="ISO_15444_1"),
    Syntax(HTJ2K_LOSSLESS, "HTJ2K (Lossless Only)", "j2k", True, encodable=True),
    Syntax(
        HTJ2K_LOSSLESS_RPCL, "HTJ2K with RPCL Options (Lossless Only)", "j2k", True, encodable=True
    ),
    Syntax(HTJ2K, "HTJ2K", "j2k", True, lossy=True, method="ISO_15444_15"),
    Syntax(RLE_LOSSLESS, "RLE Lossless", "rle", True, encodable=True),
)

SYNTAXES: dict[str, Syntax] = {s.uid: s for s in _SYNTAXES}

#: The transfer syntax a frame media type stands for when the request names none
#: (PS3.18 Table 8.7.3-5, the defaults of the single-frame and pixel media types).
DEFAULT_FOR_MEDIA_TYPE = {
    "application/octet-stream": EXPLICIT_VR_LE,
    "image/jls": JPEG_LS_LOSSLESS,
    "image/jp2": J2K_LOSSLESS,
    "image/jphc": HTJ2K_LOSSLESS,
    "image/dicom-rle": RLE_LOSSLESS,
    "image/jpeg": JPEG_BASELINE,
}


def syntax(uid: str) -> Syntax | None:
    return SYNTAXES.get(uid)


def can_decode(uid: str) -> bool:
    return uid in SYNTAXES


def can_encode(uid: str) -> bool:
    found = SYNTAXES.get(uid)
    return found is not None and found.encodable


def encodable() -> list[str]:
    return [s.uid for s in _SYNTAXES if s.encodable]
