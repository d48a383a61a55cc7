"""The codec layer against pydicom's bundled test files (PS3.5 8 and A.4, PS3.3 C.7.6.3).

Golden: each file's decoded frames (all of them) have a recorded shape, type, photometric
interpretation and SHA-256 in pixels.json. Independent reference: where pydicom decodes the
file here by itself (native, RLE, and through Pillow baseline JPEG and JPEG 2000), its array
must equal ours. Round trips: every image written in each lossless syntax the archive writes
and read back is pixel-identical, and pydicom reads the written files to the same values.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from hounsfield.services.pixels import codec
from hounsfield.services.pixels.codec import CodecError
from hounsfield.services.pixels.color import ybr_full_to_rgb
from hounsfield.services.pixels.image import image_info
from hounsfield.services.pixels.syntaxes import (
    EXPLICIT_VR_LE,
    HTJ2K_LOSSLESS,
    HTJ2K_LOSSLESS_RPCL,
    IMPLICIT_VR_LE,
    J2K_LOSSLESS,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
    SYNTAXES,
)
from tests.pixelsupport import CORPUS, PixelArchive, corpus_path, digest, pixel_archive

GOLDEN = json.loads((Path(__file__).parent / "pixels.json").read_text())

#: Files pydicom decodes here without pylibjpeg/gdcm (natively or through Pillow).
PYDICOM_DECODES = (
    "693_J2KI.dcm",
    "CT_small.dcm",
    "ExplVR_BigEnd.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "rtdose.dcm",
    "rtdose_rle.dcm",
)

TARGETS = (
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    JPEG_LS_LOSSLESS,
    J2K_LOSSLESS,
    HTJ2K_LOSSLESS,
    HTJ2K_LOSSLESS_RPCL,
    RLE_LOSSLESS,
)

#: One file per kind of image for the round trips (every photometric interpretation, signed
#: and unsigned, 8/12/16/32 bits, 1-bit, multi-frame, big endian and deflated sources).
ROUND_TRIP = (
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "JPGExtended.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_palette.dcm",
    "examples_jpeg2k.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "rtdose.dcm",
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PixelArchive]:
    with pixel_archive(tmp_path_factory.mktemp("pixels")) as built:
        yield built


def decoded(archive: PixelArchive, name: str) -> list[codec.Decoded]:
    source = archive.pixels.source(archive.instances[name])
    return list(archive.pixels.frames(source))


@pytest.mark.parametrize("name", CORPUS)
def test_decoded_frames_match_golden(archive: PixelArchive, name: str) -> None:
    expected = GOLDEN[name]
    if "error" in expected:
        with pytest.raises(CodecError):
            decoded(archive, name)
        return
    frames = decoded(archive, name)
    first = frames[0]
    assert archive.instances[name].transfer_syntax_uid == expected["syntax"]
    assert (first.photometric, str(first.array.dtype)) == (
        expected["photometric"],
        expected["dtype"],
    )
    assert list(first.array.shape) == expected["shape"]
    assert len(frames) == expected["frames"]
    assert digest([f.array for f in frames]) == expected["sha256"]


def _pydicom_array(name: str) -> np.ndarray[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(corpus_path(name))
        array: np.ndarray[Any, Any] = ds.pixel_array
    return array


@pytest.mark.parametrize("name", PYDICOM_DECODES)
def test_decoding_agrees_with_pydicom(archive: PixelArchive, name: str) -> None:
    frames = decoded(archive, name)
    ours = np.stack([f.array for f in frames]) if len(frames) > 1 else frames[0].array
    if frames[0].photometric == "YBR_FULL":
        # pydicom hands out YBR as RGB; the conversion rounds, so allow one level.
        ours = ybr_full_to_rgb(ours, 8)
        assert np.abs(ours.astype(int) - _pydicom_array(name).astype(int)).max() <= 1
        return
    reference = _pydicom_array(name)
    assert ours.shape == reference.shape
    assert np.array_equal(ours, reference.astype(ours.dtype))


def _read_back(data: bytes) -> tuple[pydicom.Dataset, list[codec.Decoded]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(data))
    syntax = str(ds.file_meta.TransferSyntaxUID)
    info = image_info(ds, syntax)
    if SYNTAXES[syntax].encapsulated:
        raw = list(generate_frames(ds.PixelData, number_of_frames=info.frames))
    elif info.bits_allocated == 1:
        raw = [ds.PixelData] * info.frames
    else:
        raw = [
            ds.PixelData[i * info.frame_size : (i + 1) * info.frame_size]
            for i in range(info.frames)
        ]
    return ds, [codec.decode(info, frame, i) for i, frame in enumerate(raw)]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ROUND_TRIP)
def test_lossless_round_trip_is_pixel_exact(archive: PixelArchive, name: str, target: str) -> None:
    instance = archive.instances[name]
    originals = decoded(archive, name)
    if target not in (EXPLICIT_VR_LE, IMPLICIT_VR_LE) and name == "liver_1frame.dcm":
        with pytest.raises(CodecError, match="1-bit"):
            archive.pixels.transcode(instance, target)
        return
    if target not in (EXPLICIT_VR_LE, IMPLICIT_VR_LE, RLE_LOSSLESS) and name == "rtdose.dcm":
        with pytest.raises(CodecError, match="32-bit"):
            archive.pixels.transcode(instance, target)
        return
    data = b"".join(archive.pixels.transcode(instance, target))
    ds, frames = _read_back(data)
    assert ds.file_meta.TransferSyntaxUID == target
    assert ds.SOPInstanceUID == instance.sop_uid  # a new syntax is not a new instance
    assert "PixelData" in ds and len(frames) == len(originals)
    for original, copy in zip(originals, frames, strict=True):
        assert np.array_equal(original.array, copy.array)
    photometric = originals[0].photometric
    if target in (J2K_LOSSLESS, HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL) and photometric == "RGB":
        assert ds.PhotometricInterpretation == "YBR_RCT"  # PS3.5 8.2.4: reversible transform
    else:
        assert ds.PhotometricInterpretation == photometric
    if ds.SamplesPerPixel > 1:
        assert ds.PlanarConfiguration == 0


@pytest.mark.parametrize(
    ("name", "target"),
    [
        (name, target)
        for name in ("CT_small.dcm", "rtdose.dcm", "SC_rgb_rle_16bit_2frame.dcm")
        for target in (EXPLICIT_VR_LE, RLE_LOSSLESS)
    ]
    # Pillow's OpenJPEG, through pydicom, reads single-sample 16-bit JPEG 2000.
    + [("CT_small.dcm", J2K_LOSSLESS), ("MR_small_bigendian.dcm", J2K_LOSSLESS)],
)
def test_pydicom_reads_what_the_archive_writes(
    archive: PixelArchive, name: str, target: str
) -> None:
    """An independent reader: pydicom's own native/RLE decoders and Pillow's OpenJPEG."""
    data = b"".join(archive.pixels.transcode(archive.instances[name], target))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = pydicom.dcmread(BytesIO(data)).pixel_array
    assert np.array_equal(written, _pydicom_array(name))


def test_htj2k_rpcl_codestream_has_the_required_options(archive: PixelArchive) -> None:
    """PS3.5 A.4.7: RPCL progression, a TLM marker segment, tile-parts per resolution."""
    data = b"".join(
        archive.pixels.transcode(archive.instances["CT_small.dcm"], HTJ2K_LOSSLESS_RPCL)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(data))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    cod = frame.find(b"\xff\x52")
    assert frame[:2] == b"\xff\x4f" and b"\xff\x50" in frame  # SOC, CAP (HTJ2K)
    assert frame[cod + 5] == 2  # progression order RPCL
    assert b"\xff\x55" in frame  # TLM
    assert frame.count(b"\xff\x90") > 1  # more than one tile-part


def _written(archive: PixelArchive, name: str, target: str) -> pydicom.Dataset:
    data = b"".join(archive.pixels.transcode(archive.instances[name], target))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(BytesIO(data))


def test_decompressing_a_lossy_image_records_its_history(archive: PixelArchive) -> None:
    """PS3.3 C.7.6.1.1.5: Lossy Image Compression becomes (and stays) "01", with the method
    and ratio of the compression the stored image went through."""
    ds = _written(archive, "JPEGLSNearLossless_16.dcm", EXPLICIT_VR_LE)  # no flag at all
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_14495_1"
    assert float(ds.LossyImageCompressionRatio) > 1
    ds = _written(archive, "JPGExtended.dcm", RLE_LOSSLESS)  # "01" without a method
    assert (ds.LossyImageCompression, ds.LossyImageCompressionMethod) == ("01", "ISO_10918_1")
    ds = _written(archive, "SC_rgb_jpeg_dcmtk.dcm", J2K_LOSSLESS)  # already complete
    assert ds.LossyImageCompressionMethod == "ISO_10918_1"


def test_lossless_source_stays_lossless(archive: PixelArchive) -> None:
    data = b"".join(archive.pixels.transcode(archive.instances["CT_small.dcm"], RLE_LOSSLESS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(data))
    assert ds.get("LossyImageCompression", "00") == "00"
    assert "LossyImageCompressionMethod" not in ds


def test_unwritable_targets_are_refused(archive: PixelArchive) -> None:
    with pytest.raises(CodecError):
        archive.pixels.transcode(archive.instances["CT_small.dcm"], "1.2.840.10008.1.2.4.50")
    with pytest.raises(CodecError):
        archive.pixels.transcode(archive.instances["CT_small.dcm"], "1.2.3.4")
