"""The rendering pipeline against reference computations of the standard's formulas:
VOI LUT functions (PS3.3 C.11.2.1.2.1, C.11.2.1.3.1, C.11.2.1.3.2), Modality LUT (C.11.1),
MONOCHROME1 and Presentation LUT Shape (C.7.6.3.1.2, C.11.6), Pixel Padding Value (C.7.5.1.1.2),
viewport and source region (PS3.18 8.3.5.1.3), and the rendering query parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset

from hounsfield.frontends.dicomweb.rendered import parse_viewport, parse_window
from hounsfield.frontends.http.core import HttpError
from hounsfield.services.pixels.codec import Decoded
from hounsfield.services.pixels.image import ImageInfo, Lut
from hounsfield.services.pixels.render import (
    RenderError,
    Viewport,
    Window,
    apply_window,
    display,
    grayscale,
    region_and_viewport,
)


def linear(x: float, c: float, w: float, ymin: float = 0, ymax: float = 255) -> float:
    """C.11.2.1.2.1, the pseudo-code as written."""
    if x <= c - 0.5 - (w - 1) / 2:
        return ymin
    if x > c - 0.5 + (w - 1) / 2:
        return ymax
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin


def linear_exact(x: float, c: float, w: float, ymin: float = 0, ymax: float = 255) -> float:
    """C.11.2.1.3.2."""
    if x <= c - w / 2:
        return ymin
    if x > c + w / 2:
        return ymax
    return ((x - c) / w + 0.5) * (ymax - ymin) + ymin


def sigmoid(x: float, c: float, w: float, ymin: float = 0, ymax: float = 255) -> float:
    """C.11.2.1.3.1 (an exponent beyond float range is the limit it tends to)."""
    exponent = -4 * (x - c) / w
    if exponent > 700:
        return ymin
    return (ymax - ymin) / (1 + math.exp(exponent)) + ymin


REFERENCES = {"LINEAR": linear, "LINEAR_EXACT": linear_exact, "SIGMOID": sigmoid}
X = np.arange(-1200, 3200, 7, dtype=np.int16)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("center", "width"), [(40, 400), (-600, 1500), (0.5, 2), (1024, 4096)])
def test_window_functions_match_the_standard(function: str, center: float, width: float) -> None:
    ours = apply_window(X, Window(center, width, function))
    reference = np.array([REFERENCES[function](float(x), center, width) for x in X])
    assert np.allclose(ours, reference, atol=1e-9)


def test_linear_width_one_is_a_threshold() -> None:
    """C.11.2.1.2.1 note 5: below the center is the minimum, the rest the maximum."""
    ours = apply_window(np.array([99, 100, 101]), Window(100, 1))
    assert list(ours) == [0, 255, 255]
    assert [linear(x, 100, 1.0001) for x in (99, 101)] == [0, 255]


@pytest.mark.parametrize(
    ("width", "function"), [(0.5, "LINEAR"), (0, "SIGMOID"), (-1, "LINEAR_EXACT")]
)
def test_window_width_out_of_range(width: float, function: str) -> None:
    with pytest.raises(RenderError):
        Window(0, width, function)


def info(**overrides: object) -> ImageInfo:
    base: dict[str, object] = {
        "transfer_syntax": "1.2.840.10008.1.2.1",
        "rows": 2,
        "columns": 3,
        "samples": 1,
        "bits_allocated": 16,
        "bits_stored": 12,
        "signed": False,
        "photometric": "MONOCHROME2",
        "planar": 0,
        "frames": 1,
    }
    base.update(overrides)
    return ImageInfo(**base)  # type: ignore[arg-type]


STORED = np.array([[0, 1000, 1024], [1100, 2000, 4095]], dtype=np.uint16)


def test_modality_then_header_window() -> None:
    described = info(rescale_slope=2.0, rescale_intercept=-1024.0, windows=((0.0, 400.0),))
    shown = grayscale(Decoded(STORED, "MONOCHROME2"), described, None)
    hu = STORED * 2.0 - 1024.0
    expected = np.rint([[linear(float(v), 0, 400) for v in row] for row in hu])
    assert np.array_equal(shown, expected.astype(np.uint8))


def test_requested_window_overrides_the_header() -> None:
    described = info(windows=((0.0, 10.0),))
    shown = grayscale(Decoded(STORED, "MONOCHROME2"), described, Window(2048, 4096, "SIGMOID"))
    expected = np.rint([[sigmoid(float(v), 2048, 4096) for v in row] for row in STORED])
    assert np.array_equal(shown, expected.astype(np.uint8))


def test_header_voi_function_is_honoured() -> None:
    described = info(windows=((1000.0, 200.0),), voi_function="LINEAR_EXACT")
    shown = grayscale(Decoded(STORED, "MONOCHROME2"), described, None)
    expected = np.rint([[linear_exact(float(v), 1000, 200) for v in row] for row in STORED])
    assert np.array_equal(shown, expected.astype(np.uint8))


def test_monochrome1_is_inverted_and_padding_is_black() -> None:
    described = info(windows=((2048.0, 4096.0),), padding=(0, 0), photometric="MONOCHROME1")
    shown = grayscale(Decoded(STORED, "MONOCHROME1"), described, None)
    expected = 255 - np.rint([[linear(float(v), 2048, 4096) for v in row] for row in STORED])
    expected[0, 0] = 0  # the padding pixel
    assert np.array_equal(shown, expected.astype(np.uint8))


def test_presentation_lut_inverse() -> None:
    plain = grayscale(Decoded(STORED, "MONOCHROME2"), info(windows=((2048.0, 4096.0),)), None)
    inverse = info(windows=((2048.0, 4096.0),), presentation_inverse=True)
    assert np.array_equal(grayscale(Decoded(STORED, "MONOCHROME2"), inverse, None), 255 - plain)


def test_without_any_window_the_values_present_span_the_output() -> None:
    shown = grayscale(Decoded(STORED, "MONOCHROME2"), info(padding=(4095, 4095)), None)
    assert shown[0, 0] == 0 and shown[1, 1] == 255  # 0..2000: the padding value is left out
    assert shown[1, 2] == 0  # padding


def test_voi_lut_sequence_and_modality_lut() -> None:
    modality_lut = Lut(0, 16, np.arange(4096, dtype=np.int64) // 2)
    voi = Lut(0, 8, np.clip(np.arange(2048, dtype=np.int64) // 4, 0, 255))
    shown = grayscale(
        Decoded(STORED, "MONOCHROME2"), info(modality_lut=modality_lut, voi_luts=(voi,)), None
    )
    expected = np.clip(np.clip(STORED // 2, 0, 2047) // 4, 0, 255)
    assert np.array_equal(shown, expected.astype(np.uint8))


def test_palette_colour() -> None:
    ramp = np.arange(256, dtype=np.int64) * 257  # 16-bit entries
    palette = (Lut(0, 16, ramp), Lut(0, 16, ramp[::-1].copy()), Lut(0, 16, ramp * 0))
    pixels = np.array([[0, 255]], dtype=np.uint8)
    described = info(
        rows=1,
        columns=2,
        bits_allocated=8,
        bits_stored=8,
        photometric="PALETTE COLOR",
        palette=palette,
    )
    shown = display(Decoded(pixels, "PALETTE COLOR"), described, None)
    assert shown.tolist() == [[[0, 255, 0], [255, 0, 0]]]


def test_viewport_keeps_the_aspect_ratio_and_flips() -> None:
    image = np.arange(40 * 20, dtype=np.uint8).reshape(20, 40)
    assert region_and_viewport(image, Viewport(100, 100)).shape == (50, 100)
    region = region_and_viewport(image, Viewport(10, 5, 0, 0, 10, 5))
    assert np.array_equal(region, image[:5, :10])
    flipped = region_and_viewport(image, Viewport(10, 5, 10, 0, -10, 5))
    assert np.array_equal(flipped, image[:5, :10][:, ::-1])
    assert region_and_viewport(image, None, 8).shape == (4, 8)


def test_query_parameter_parsing() -> None:
    assert parse_window("40,400,linear-exact") == Window(40, 400, "LINEAR_EXACT")
    assert parse_window("40,400") == Window(40, 400, "LINEAR")
    assert parse_viewport("512,256") == Viewport(512, 256)
    assert parse_viewport("64,64,10,20,-30,") == Viewport(64, 64, 10, 20, -30, None)
    for bad in ("40", "a,b,linear", "40,400,cubic", "40,0,linear"):
        with pytest.raises(HttpError):
            parse_window(bad)
    for bad in ("0,10", "10", "10,10,0,0,0,5", "x,y"):
        with pytest.raises(HttpError):
            parse_viewport(bad)


def test_frame_time_from_the_header() -> None:
    """PS3.3 C.7.6.5: Frame Time, else a frame rate, else the Frame Time Vector."""
    from pydicom.dataset import Dataset

    from hounsfield.services.pixels.service import frame_time_ms

    header = Dataset()
    assert frame_time_ms(header) is None
    header.FrameTimeVector = [0, 40, 60]
    assert frame_time_ms(header) == 50
    header.CineRate = 25
    assert frame_time_ms(header) == 40
    header.RecommendedDisplayFrameRate = 10
    assert frame_time_ms(header) == 100
    header.FrameTime = 33.3
    assert frame_time_ms(header) == 33.3


def test_annotation_text() -> None:
    from pydicom.dataset import Dataset

    from hounsfield.services.pixels.render import RenderOptions
    from hounsfield.services.pixels.service import Source, annotation_text

    header = Dataset()
    header.PatientName = "Doe^Jane"
    header.PatientID = "ID-1"
    header.PatientBirthDate = "19700101"
    header.PatientSex = "F"
    header.Modality = "CT"
    header.StudyDate = "20240102"
    header.SeriesDescription = "Chest"
    source = Source(header, info(windows=((40.0, 400.0),)), 3, 0, lambda n: b"")
    left, right = annotation_text(source, 2, RenderOptions(annotations=("patient", "technique")))
    assert left == ["Doe Jane", "ID-1", "19700101 F"]
    assert right == ["CT 20240102", "Chest", "W 400 C 40", "frame 2/3"]
    assert annotation_text(source, 1, RenderOptions(annotations=("technique",)))[0] == []


def test_padding_value_written_unsigned_for_signed_pixels() -> None:
    """PS3.3 C.7.5.1.1.2: Pixel Padding Value has the Pixel Representation of the pixels;
    one written as US 63536 for signed data means -2000."""
    from pydicom.dataset import Dataset

    from hounsfield.services.pixels.image import image_info

    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 2, 2, 1
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16, 16, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.add_new(0x00280120, "US", 63536)
    assert image_info(ds, "1.2.840.10008.1.2.1").padding == (-2000, -2000)


def _enhanced(frames: int) -> Dataset:
    """An Enhanced CT-like header: rescale shared by every frame, a window per frame
    (PS3.3 C.7.6.16.2.9 Pixel Value Transformation, C.7.6.16.2.10 Frame VOI LUT)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.NumberOfFrames = 2, 3, 1, frames
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16, 12, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 2, -1024, "HU"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for number in range(1, frames + 1):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = 40 * number, 400
        if number == frames:
            voi.VOILUTFunction = "LINEAR_EXACT"
        item = Dataset()
        item.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    return ds


def test_enhanced_objects_take_rescale_and_window_from_functional_groups() -> None:
    """The shared group's rescale applies to every frame, each frame's window is its own
    Per-frame Functional Groups item's (PS3.3 C.7.6.16.1.1)."""
    from hounsfield.services.pixels.image import image_info

    described = image_info(_enhanced(3), "1.2.840.10008.1.2.1")
    assert (described.rescale_slope, described.rescale_intercept) == (2.0, -1024.0)
    hu = STORED * 2.0 - 1024.0
    for number, function in ((1, linear), (2, linear), (3, linear_exact)):
        frame = described.for_frame(number)
        assert frame.windows == ((40.0 * number, 400.0),)
        shown = grayscale(Decoded(STORED, "MONOCHROME2"), frame, None)
        expected = np.rint([[function(float(v), 40 * number, 400) for v in row] for row in hu])
        assert np.array_equal(shown, expected.astype(np.uint8)), number
    assert described.for_frame(4) is described  # beyond the sequence: the image's own


def test_a_per_frame_rescale_overrides_none_shared() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from hounsfield.services.pixels.image import image_info

    ds = _enhanced(2)
    del ds.SharedFunctionalGroupsSequence
    for number, item in enumerate(ds.PerFrameFunctionalGroupsSequence, start=1):
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = number, 0
        item.PixelValueTransformationSequence = Sequence([transform])
    described = image_info(ds, "1.2.840.10008.1.2.1")
    assert (described.rescale_slope, described.rescale_intercept) == (1.0, 0.0)
    assert described.for_frame(2).rescale_slope == 2.0
    assert described.for_frame(2).voi_function == "LINEAR_EXACT"
    assert described.for_frame(1).voi_function == "LINEAR"
