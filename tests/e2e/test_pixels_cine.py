"""Cine of a series through the real HTTP server (PS3.18 8.7.4: image/gif and video/mp4 for
multi-frame content), the `framerate` parameter, the bounds of one animation, and the
Presentation LUT and VOI LUT Sequence stages of the grayscale pipeline (PS3.4 N.2.1, PS3.3
C.11.2, C.11.6.1.2, C.7.6.1) on built images, against the standard's formulas and pydicom."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_voi_lut

from tests.builders import make_dataset, multipart, to_bytes, uid
from tests.conftest import RunningServer, start_server, stop_server
from tests.pixelsupport import split_multipart

STUDY, SERIES, BIG_SERIES = uid(), uid(), uid()
#: Instance Number -> the uniform stored value of its frames; stored out of order.
VALUES = {3: [3000], 1: [1000], 2: [2000], 4: [3500, 4000]}
WINDOW = {"WindowCenter": 2048, "WindowWidth": 4096}


def _uniform(number: int, values: list[int], **extra: object) -> Dataset:
    ds = make_dataset(
        study_uid=STUDY,
        series_uid=SERIES,
        rows=32,
        columns=32,
        frames=len(values),
        instance_number=number,
        **WINDOW,
        **extra,
    )
    ds.PixelData = np.concatenate(
        [np.full(32 * 32, value, dtype=np.uint16) for value in values]
    ).tobytes()
    return ds


def _post(server: RunningServer, datasets: list[Dataset]) -> None:
    body, content_type = multipart([to_bytes(ds) for ds in datasets])
    response = httpx.post(
        f"{server.dicomweb}/studies", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("pixels-cine") / "data")
    try:
        series = []
        for number, values in VALUES.items():
            extra = {"RecommendedDisplayFrameRate": 5} if number == 1 else {}
            series.append(_uniform(number, values, **extra))
        _post(running, series)
        # More frames than one animation may hold (1x1 pixels: cheap to store).
        big = make_dataset(study_uid=STUDY, series_uid=BIG_SERIES, rows=1, columns=1, frames=1001)
        _post(running, [big])
        yield running
    finally:
        stop_server(running)


def series_url(server: RunningServer, series: str = SERIES) -> str:
    return f"{server.dicomweb}/studies/{STUDY}/series/{series}/rendered"


def gif_frames(data: bytes) -> tuple[list[float], list[int]]:
    """The mean grey level and the duration (ms) of each frame of a GIF."""
    image = Image.open(io.BytesIO(data))
    means, durations = [], []
    for index in range(image.n_frames):  # type: ignore[attr-defined]
        image.seek(index)
        means.append(float(np.asarray(image.convert("L")).mean()))
        durations.append(image.info["duration"])
    return means, durations


def test_series_as_one_gif_in_instance_number_order(server: RunningServer) -> None:
    response = httpx.get(series_url(server), headers={"accept": "image/gif"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/gif"
    means, durations = gif_frames(response.content)
    # Instances 1, 2, 3, then both frames of 4: 1000, 2000, 3000, 3500, 4000 through the
    # header's window (PS3.3 C.11.2.1.2.1), whatever the order they were stored in.
    expected = [((v - 2047.5) / 4095 + 0.5) * 255 for v in (1000, 2000, 3000, 3500, 4000)]
    assert np.allclose(means, expected, atol=1)
    # Recommended Display Frame Rate (0008,2144) of the first instance: 5 per second.
    assert durations == [200] * 5


def test_framerate_parameter_sets_the_pace(server: RunningServer) -> None:
    _, durations = gif_frames(
        httpx.get(series_url(server) + "?accept=image/gif&framerate=4").content
    )
    assert durations == [250] * 5


def test_series_as_one_video(server: RunningServer) -> None:
    av = pytest.importorskip("av")
    response = httpx.get(series_url(server) + "?framerate=4", headers={"accept": "video/mp4"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert round(float(stream.average_rate)) == 4
    means = [float(frame[:32, :32].mean()) for frame in frames]
    assert len(means) == 5 and means == sorted(means)


def test_multipart_gif_is_one_animation_per_instance(server: RunningServer) -> None:
    response = httpx.get(
        series_url(server), headers={"accept": 'multipart/related; type="image/gif"'}
    )
    parts = split_multipart(response.headers["content-type"], response.content)
    assert [t for t, _ in parts] == ["image/gif"] * 4
    assert [len(gif_frames(p)[0]) for _, p in parts] == [1, 1, 1, 2]


def test_paced_multipart_of_frames(server: RunningServer) -> None:
    response = httpx.get(
        series_url(server) + "?framerate=50",
        headers={"accept": 'multipart/related; type="image/png"'},
    )
    assert response.status_code == 200
    parts = split_multipart(response.headers["content-type"], response.content)
    means = [float(np.asarray(Image.open(io.BytesIO(p))).mean()) for _, p in parts]
    assert len(means) == 5 and means == sorted(means)


@pytest.mark.parametrize("rate", ["0", "-2", "fast", "101"])
def test_bad_framerate_is_400(server: RunningServer, rate: str) -> None:
    response = httpx.get(series_url(server), params={"accept": "image/gif", "framerate": rate})
    assert response.status_code == 400
    assert "framerate" in response.text


def test_a_series_beyond_the_cap_is_400_before_decoding(server: RunningServer) -> None:
    response = httpx.get(series_url(server, BIG_SERIES), headers={"accept": "image/gif"})
    assert response.status_code == 400
    assert "1001 frames" in response.text and "at most 1000" in response.text
    # So is the same 1001-frame instance as an animated GIF or video.
    sop = httpx.get(f"{server.dicomweb}/studies/{STUDY}/series/{BIG_SERIES}/instances").json()[0][
        "00080018"
    ]["Value"][0]
    instance = f"{server.dicomweb}/studies/{STUDY}/series/{BIG_SERIES}/instances/{sop}"
    refused = httpx.get(instance + "/rendered", headers={"accept": "image/gif"})
    assert refused.status_code == 400 and "at most 1000" in refused.text
    assert httpx.get(instance + "/frames/1,2,1001/rendered?accept=image/gif").status_code == 200
    # The multipart form streams frame by frame and is not bounded.
    streamed = httpx.get(
        series_url(server, BIG_SERIES), headers={"accept": 'multipart/related; type="image/png"'}
    )
    assert streamed.status_code == 200
    assert len(split_multipart(streamed.headers["content-type"], streamed.content)) == 1001


def test_series_cine_entity_tag(server: RunningServer) -> None:
    first = httpx.get(series_url(server), headers={"accept": "image/gif"})
    etag = first.headers["etag"]
    again = httpx.get(series_url(server), headers={"accept": "image/gif", "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    other = httpx.get(series_url(server) + "?framerate=4", headers={"accept": "image/gif"})
    assert other.headers["etag"] != etag


# --- Presentation LUT and VOI LUT Sequence (PS3.4 N.2.1) --------------------------------------

RAMP = (np.arange(64 * 64, dtype=np.uint16) % 4096).reshape(64, 64)


def _ramp(photometric: str, **extra: object) -> Dataset:
    ds = make_dataset(study_uid=STUDY, series_uid=uid(), rows=64, columns=64, **extra)
    ds.PhotometricInterpretation = photometric
    ds.PixelData = RAMP.tobytes()
    return ds


def _png(server: RunningServer, ds: Dataset, query: str = "") -> np.ndarray:  # type: ignore[type-arg]
    _post(server, [ds])
    url = (
        f"{server.dicomweb}/studies/{STUDY}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/rendered?accept=image/png{query}"
    )
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:  # type: ignore[type-arg]
    """PS3.3 C.11.2.1.2.1 to 0..255, rounded."""
    y = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    y = np.where(values <= center - 0.5 - (width - 1) / 2, 0, y)
    y = np.where(values > center - 0.5 + (width - 1) / 2, 255, y)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME1", None, True),
        # PS3.3 C.7.6.1: INVERSE is how a MONOCHROME1 image says it is inverted, once.
        ("MONOCHROME1", "INVERSE", True),
        # IDENTITY does not cancel the inversion that MONOCHROME1 calls for.
        ("MONOCHROME1", "IDENTITY", True),
        # INVERSE on MONOCHROME2 (outside the standard's pairing): the one inversion asked for.
        ("MONOCHROME2", "INVERSE", True),
    ],
)
def test_presentation_lut_shape_inverts_once(
    server: RunningServer, photometric: str, shape: str | None, inverted: bool
) -> None:
    extra = {"PresentationLUTShape": shape} if shape else {}
    shown = _png(server, _ramp(photometric, **WINDOW, **extra))
    expected = linear_window(RAMP.astype(np.float64), 2048, 4096)
    assert np.array_equal(shown, 255 - expected if inverted else expected)
    # A requested window goes through the same Presentation LUT.
    windowed = _png(server, _ramp(photometric, **extra), "&window=1000,500")
    expected = linear_window(RAMP.astype(np.float64), 1000, 500)
    assert np.array_equal(windowed, 255 - expected if inverted else expected)


def _voi_lut_item(vr: str = "US") -> Dataset:
    """A non-linear VOI LUT (PS3.3 C.11.2.1.1): 4096 entries from 0, 16 bits, a square root
    (PS3.4 N.2.1.3: its output range is 0 to 2^16 - 1, scaled here to 8-bit P-values)."""
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTExplanation = "square root"
    data = [round(65535 * (v / 4095) ** 0.5) for v in range(4096)]
    # LUT Data is US or OW (PS3.3 C.11.2.1.1); a reader must take both.
    item.add_new("LUTData", vr, data if vr == "US" else np.asarray(data, "<u2").tobytes())
    return item


@pytest.mark.parametrize(
    ("photometric", "vr"), [("MONOCHROME2", "US"), ("MONOCHROME2", "OW"), ("MONOCHROME1", "US")]
)
def test_voi_lut_sequence_when_no_window(server: RunningServer, photometric: str, vr: str) -> None:
    ds = _ramp(photometric, VOILUTSequence=[_voi_lut_item(vr)])
    if photometric == "MONOCHROME1":
        ds.PresentationLUTShape = "INVERSE"
    shown = _png(server, ds)
    with_pydicom = np.rint(apply_voi_lut(RAMP, ds) * (255 / 65535)).astype(np.uint8)
    expected = 255 - with_pydicom if photometric == "MONOCHROME1" else with_pydicom
    assert np.array_equal(shown, expected)
    # A requested window replaces the VOI LUT (PS3.18 8.3.5.1.4).
    windowed = _png(
        server, _ramp(photometric, VOILUTSequence=[_voi_lut_item()]), "&window=1000,500"
    )
    expected = linear_window(RAMP.astype(np.float64), 1000, 500)
    assert np.array_equal(windowed, 255 - expected if photometric == "MONOCHROME1" else expected)


def test_pydicom_reads_the_built_voi_lut() -> None:
    """The reference is meaningful: pydicom maps the ramp through the table, not a window."""
    ds = _ramp("MONOCHROME2", VOILUTSequence=[_voi_lut_item()])
    ds = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    mapped = apply_voi_lut(RAMP, ds)
    assert int(mapped[0, 1]) == round(65535 * (1 / 4095) ** 0.5) and int(mapped.max()) == 65535


def test_paced_multipart_of_an_instances_frames(server: RunningServer) -> None:
    found = httpx.get(f"{server.dicomweb}/studies/{STUDY}/series/{SERIES}/instances").json()
    (sop,) = [i["00080018"]["Value"][0] for i in found if i["00200013"]["Value"][0] == 4]
    frames = f"{server.dicomweb}/studies/{STUDY}/series/{SERIES}/instances/{sop}/frames"
    accept = {"accept": 'multipart/related; type="image/png"'}
    response = httpx.get(frames + "/2,1/rendered?framerate=20", headers=accept)
    assert response.status_code == 200
    parts = split_multipart(response.headers["content-type"], response.content)
    means = [float(np.asarray(Image.open(io.BytesIO(p))).mean()) for _, p in parts]
    assert len(means) == 2 and means[0] > means[1]  # frame 2 (4000) before frame 1 (3500)
    # A frame that does not exist is refused before the first part.
    assert httpx.get(frames + "/1,3/rendered", headers=accept).status_code == 404
