"""Rendered images against golden PNGs (within a tolerance) and against pydicom's own Modality
and VOI LUT implementation (PS3.3 C.11.1, C.11.2) as an independent reference.

The PNGs in rendered/ were made by this renderer and checked by eye; a change of more than two
levels in any pixel is a regression (or a deliberate change: regenerate them with
`python -m tests.golden.test_rendered_golden` and look at them)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from hounsfield.services.pixels.render import PNG, RenderOptions, Viewport, Window
from tests.pixelsupport import PixelArchive, corpus_path, pixel_archive

HERE = Path(__file__).parent / "rendered"
SMALL = Viewport(128, 128)

#: (golden name, corpus file, frame, options)
CASES: list[tuple[str, str, int, RenderOptions]] = [
    ("ct_header_window", "CT_small.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("ct_soft_tissue", "CT_small.dcm", 1, RenderOptions(PNG, Window(40, 400), SMALL)),
    ("ct_sigmoid", "CT_small.dcm", 1, RenderOptions(PNG, Window(40, 400, "SIGMOID"), SMALL)),
    ("mr_j2k", "MR_small_jp2klossless.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("jpeg_12bit", "JPGExtended.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("palette", "examples_palette.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("ybr_jpeg_frame15", "examples_ybr_color.dcm", 15, RenderOptions(PNG, viewport=SMALL)),
    ("rgb16_rle_frame2", "SC_rgb_rle_16bit_2frame.dcm", 2, RenderOptions(PNG, viewport=SMALL)),
    ("ybr422_native", "SC_ybr_full_422_uncompressed.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("ybr_rct_j2k", "examples_jpeg2k.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("one_bit", "liver_1frame.dcm", 1, RenderOptions(PNG, viewport=SMALL)),
    ("dose_32bit_frame5", "rtdose.dcm", 5, RenderOptions(PNG, viewport=Viewport(64, 64))),
    (
        "ct_region_flipped",
        "CT_small.dcm",
        1,
        RenderOptions(PNG, viewport=Viewport(64, 64, 100, 10, -80, 80)),
    ),
]
NAMES = tuple(sorted({case[1] for case in CASES} | {"MR_small.dcm"}))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PixelArchive]:
    with pixel_archive(tmp_path_factory.mktemp("rendered"), NAMES) as built:
        yield built


def render_case(archive: PixelArchive, name: str, frame: int, options: RenderOptions) -> bytes:
    return archive.pixels.render(archive.instances[name], [frame], options)


@pytest.mark.parametrize(("golden", "name", "frame", "options"), CASES, ids=[c[0] for c in CASES])
def test_rendered_png_matches_golden(
    archive: PixelArchive, golden: str, name: str, frame: int, options: RenderOptions
) -> None:
    ours = imagecodecs.png_decode(render_case(archive, name, frame, options))
    expected = imagecodecs.png_decode((HERE / f"{golden}.png").read_bytes())
    assert ours.shape == expected.shape
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 2


def _pydicom_reference(
    archive: PixelArchive, name: str, window: Window | None
) -> np.ndarray[Any, Any]:
    """pydicom's apply_modality_lut and apply_voi_lut (linear windowing) on the stored values,
    scaled from pydicom's output range to 8 bits."""
    source = archive.pixels.source(archive.instances[name])
    stored = archive.pixels.decode(source, 1).array
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(corpus_path(name), stop_before_pixels=True)
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window.center, window.width
        values = apply_voi_lut(apply_modality_lut(stored, ds), ds, prefer_lut=False)
        low, high = apply_voi_lut(np.array([-1e12, 1e12]), ds, prefer_lut=False)
    scaled = (values.astype(np.float64) - low) / (high - low) * 255
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "window"),
    [
        ("CT_small.dcm", Window(40, 400)),
        ("CT_small.dcm", Window(300, 1500)),
        ("MR_small.dcm", None),
        ("JPGExtended.dcm", Window(2000, 3000)),
    ],
)
def test_windowing_agrees_with_pydicom(
    archive: PixelArchive, name: str, window: Window | None
) -> None:
    ours = imagecodecs.png_decode(render_case(archive, name, 1, RenderOptions(PNG, window)))
    reference = _pydicom_reference(archive, name, window)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


def _regenerate() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch, pixel_archive(Path(scratch), NAMES) as built:
        for golden, name, frame, options in CASES:
            (HERE / f"{golden}.png").write_bytes(render_case(built, name, frame, options))
            print(f"wrote {golden}.png")


if __name__ == "__main__":
    sys.exit(_regenerate())
