"""Rendered and thumbnail resources through the real HTTP server (PS3.18 8.3.5, 8.7.4,
10.4.1.1.x); images are decoded with imagecodecs/Pillow and checked against the renderer's
reference computations."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import imagecodecs
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.builders import multipart
from tests.conftest import RunningServer, start_server, stop_server, stow
from tests.pixelsupport import corpus_bytes, split_multipart

FILES = {
    "ct": "CT_small.dcm",
    "ybr": "examples_ybr_color.dcm",
    "pal": "examples_palette.dcm",
    "sr": "rtplan.dcm",
    "mr": "MR_small_jp2klossless.dcm",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("pixels-rendered") / "data")
    try:
        for partition, name in FILES.items():
            stow(f"{running.dicomweb}/partitions/{partition}", corpus_bytes(name))
        # A plan without pixels in the multi-frame image's study: rendered studies skip it.
        plan = pydicom.dcmread(io.BytesIO(corpus_bytes(FILES["sr"])))
        plan.StudyInstanceUID = pydicom.dcmread(
            io.BytesIO(corpus_bytes(FILES["ybr"]))
        ).StudyInstanceUID
        plan.SeriesInstanceUID = plan.SOPInstanceUID = plan.file_meta.MediaStorageSOPInstanceUID = (
            pydicom.uid.generate_uid(entropy_srcs=["plan in ybr study"])
        )
        buffer = io.BytesIO()
        plan.save_as(buffer)
        stow(f"{running.dicomweb}/partitions/ybr", buffer.getvalue())
        yield running
    finally:
        stop_server(running)


def urls(server: RunningServer, key: str) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(corpus_bytes(FILES[key])), force=True)
    study = f"{server.dicomweb}/partitions/{key}/studies/{ds.StudyInstanceUID}"
    series = f"{study}/series/{ds.SeriesInstanceUID}"
    return study, series, f"{series}/instances/{ds.SOPInstanceUID}"


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("accept", "media", "format_"),
    [
        ("image/jpeg", "image/jpeg", "JPEG"),
        ("image/png", "image/png", "PNG"),
        ("image/gif", "image/gif", "GIF"),
        ("*/*", "image/jpeg", "JPEG"),
        (None, "image/jpeg", "JPEG"),
    ],
)
def test_rendered_instance_media_types(
    server: RunningServer, accept: str | None, media: str, format_: str
) -> None:
    _, _, instance = urls(server, "ct")
    headers = {"accept": accept} if accept else {}
    response = httpx.get(instance + "/rendered", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    image = picture(response.content)
    assert image.format == format_ and image.size == (128, 128)


def test_accept_query_parameter_selects_the_type(server: RunningServer) -> None:
    _, _, instance = urls(server, "ct")
    response = httpx.get(instance + "/rendered?accept=image/png", headers={"accept": "text/html"})
    assert response.headers["content-type"] == "image/png"


def test_window_parameter_is_the_standard_linear_function(server: RunningServer) -> None:
    """window=40,400,linear on CT HU values, against PS3.3 C.11.2.1.2.1 computed here."""
    _, _, instance = urls(server, "ct")
    response = httpx.get(
        instance + "/rendered?window=40,400,linear", headers={"accept": "image/png"}
    )
    ours = imagecodecs.png_decode(response.content).astype(int)
    ds = pydicom.dcmread(io.BytesIO(corpus_bytes(FILES["ct"])))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    c, w = 40.0, 400.0
    expected = np.clip(((hu - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255)
    expected = np.where(hu <= c - 0.5 - (w - 1) / 2, 0, expected)
    expected = np.where(hu > c - 0.5 + (w - 1) / 2, 255, expected)
    assert np.abs(ours - np.rint(expected)).max() <= 1


def test_viewport_and_quality(server: RunningServer) -> None:
    _, _, instance = urls(server, "pal")  # 800 x 350 palette colour
    small = httpx.get(instance + "/rendered?viewport=200,200&quality=20")
    large = httpx.get(instance + "/rendered?viewport=200,200&quality=95")
    assert picture(small.content).size == (200, 88)
    assert picture(small.content).mode == "RGB"
    assert len(small.content) < len(large.content)


def test_multiframe_instance_as_gif_and_frames(server: RunningServer) -> None:
    _, _, instance = urls(server, "ybr")
    gif = picture(httpx.get(instance + "/rendered", headers={"accept": "image/gif"}).content)
    # Identical consecutive frames are merged into one of a longer duration: the animation
    # still lasts 30 frames of Frame Time (0018,1063) = 33.3 ms, in GIF's hundredths of a
    # second: 30 ms each.
    durations = []
    for index in range(gif.n_frames):  # type: ignore[attr-defined]
        gif.seek(index)
        durations.append(gif.info["duration"])
    assert gif.n_frames > 20  # type: ignore[attr-defined]
    assert sum(durations) == 30 * 30
    response = httpx.get(instance + "/frames/3,7/rendered", headers={"accept": "image/jpeg"})
    parts = split_multipart(response.headers["content-type"], response.content)
    assert [t for t, _ in parts] == ["image/jpeg", "image/jpeg"]
    assert all(picture(p).size == (320, 240) for _, p in parts)
    one = httpx.get(instance + "/frames/30/rendered")
    assert one.headers["content-type"] == "image/jpeg"
    assert httpx.get(instance + "/frames/31/rendered").status_code == 404


def test_rendered_series_and_study_are_multipart(server: RunningServer) -> None:
    study, series, _ = urls(server, "ybr")
    for url in (study, series):
        response = httpx.get(
            url + "/rendered", headers={"accept": 'multipart/related; type="image/png"'}
        )
        assert response.status_code == 200
        parts = split_multipart(response.headers["content-type"], response.content)
        assert len(parts) == 30 and {t for t, _ in parts} == {"image/png"}


@pytest.mark.parametrize("level", [0, 1, 2])
def test_thumbnails(server: RunningServer, level: int) -> None:
    url = urls(server, "pal")[level]
    response = httpx.get(url + "/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert max(picture(response.content).size) == 128
    sized = httpx.get(url + "/thumbnail?viewport=64,64", headers={"accept": "image/png"})
    assert picture(sized.content).size == (64, 28)


def test_frame_thumbnail(server: RunningServer) -> None:
    _, _, instance = urls(server, "ybr")
    response = httpx.get(instance + "/frames/2/thumbnail")
    assert response.status_code == 200 and max(picture(response.content).size) == 128


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("window=40", 400),
        ("window=40,0,linear", 400),
        ("window=40,400,cubic", 400),
        ("viewport=0,10", 400),
        ("quality=0", 400),
        ("quality=abc", 400),
    ],
)
def test_bad_parameters_are_400(server: RunningServer, query: str, status: int) -> None:
    _, _, instance = urls(server, "ct")
    assert httpx.get(f"{instance}/rendered?{query}").status_code == status


def test_unsupported_media_type_and_non_image_are_406(server: RunningServer) -> None:
    _, _, instance = urls(server, "ct")
    assert httpx.get(instance + "/rendered", headers={"accept": "text/html"}).status_code == 406
    _, _, plan = urls(server, "sr")
    assert httpx.get(plan + "/rendered").status_code == 406
    study, _, _ = urls(server, "sr")
    assert httpx.get(study + "/thumbnail").status_code == 404


def test_dicomweb_client_retrieves_rendered(server: RunningServer) -> None:
    ds = pydicom.dcmread(io.BytesIO(corpus_bytes(FILES["mr"])), force=True)
    client = DICOMwebClient(url=f"{server.dicomweb}/partitions/mr")
    data = client.retrieve_instance_rendered(
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        media_types=("image/png",),
        params={"window": "600,1600,linear"},
    )
    assert picture(data).size == (64, 64)
    frame = client.retrieve_instance_frames_rendered(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
    )
    assert picture(frame).format == "JPEG"


def test_entity_tags_and_conditional_requests(server: RunningServer) -> None:
    """RFC 9110 8.8.3 and 13.1.2: a strong ETag per rendered variant; If-None-Match with it is
    304 without a body; rendered PHI is never for shared caches."""
    _, _, instance = urls(server, "ct")
    first = httpx.get(instance + "/rendered?window=40,400")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = httpx.get(instance + "/rendered?window=40,400", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = httpx.get(instance + "/rendered?window=40,500", headers={"if-none-match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    thumb = httpx.get(instance + "/thumbnail")
    assert (
        httpx.get(
            instance + "/thumbnail", headers={"if-none-match": thumb.headers["etag"]}
        ).status_code
        == 304
    )


def test_multiframe_instance_as_mp4(server: RunningServer) -> None:
    """PS3.18 8.7.4: video/mp4 for a multi-frame image, at its Frame Time (33.3 ms)."""
    import av

    _, _, instance = urls(server, "ybr")
    response = httpx.get(instance + "/rendered", headers={"accept": "video/mp4"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert round(float(stream.average_rate)) == 30
    assert len(frames) == 30
    # The video shows the same pictures as the rendered frames (lossy: within a tolerance).
    still = np.asarray(picture(httpx.get(instance + "/frames/5/rendered?accept=image/png").content))
    assert np.abs(frames[4].astype(int) - still.astype(int)).mean() < 6


def test_annotations_are_burned_in_and_never_in_thumbnails(server: RunningServer) -> None:
    """PS3.18 8.3.5.1.1 (annotation=patient,technique) and 10.4.3.3.4 (no PHI in thumbnails)."""
    _, _, instance = urls(server, "ct")
    plain = imagecodecs.png_decode(httpx.get(instance + "/rendered?accept=image/png").content)
    annotated = imagecodecs.png_decode(
        httpx.get(instance + "/rendered?accept=image/png&annotation=patient,technique").content
    )
    changed = plain != annotated
    assert changed[:20, :40].any()  # patient, top left
    assert changed[:20, -40:].any()  # technique, top right
    assert not changed[64:, :].any()  # the image itself is untouched
    assert httpx.get(instance + "/rendered?annotation=everything").status_code == 400
    thumbnail = httpx.get(instance + "/thumbnail?annotation=patient&accept=image/png")
    bare = httpx.get(instance + "/thumbnail?accept=image/png")
    assert thumbnail.content == bare.content


def _linear(hu: np.ndarray, c: float, w: float) -> np.ndarray:  # type: ignore[type-arg]
    """PS3.3 C.11.2.1.2.1, the LINEAR window, to 8 bits."""
    out = np.clip(((hu - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255)
    out = np.where(hu <= c - 0.5 - (w - 1) / 2, 0, out)
    return np.rint(np.where(hu > c - 0.5 + (w - 1) / 2, 255, out))


def test_enhanced_frames_render_with_their_functional_groups(server: RunningServer) -> None:
    """A two-frame object whose rescale is in the Shared Functional Groups and whose windows
    are per frame (PS3.3 C.7.6.16.2.9, C.7.6.16.2.10): each rendered frame uses its own."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(io.BytesIO(corpus_bytes(FILES["ct"])))
    pixels = ds.pixel_array
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.NumberOfFrames = 2
    ds.PixelData = np.concatenate([pixels, pixels]).astype(pixels.dtype).tobytes()
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = slope, intercept
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    windows = [(40.0, 400.0), (300.0, 1500.0)]
    groups = []
    for center, width in windows:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        item = Dataset()
        item.FrameVOILUTSequence = Sequence([voi])
        groups.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    body, content_type = multipart([buffer.getvalue()])
    stored = httpx.post(
        f"{server.dicomweb}/partitions/enh/studies",
        content=body,
        headers={"content-type": content_type},
    )
    assert stored.status_code == 200, stored.text
    instance = (
        f"{server.dicomweb}/partitions/enh/studies/{ds.StudyInstanceUID}"
        f"/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    hu = pixels * slope + intercept
    for number, (center, width) in enumerate(windows, start=1):
        response = httpx.get(
            f"{instance}/frames/{number}/rendered", headers={"accept": "image/png"}
        )
        assert response.status_code == 200, response.text
        ours = imagecodecs.png_decode(response.content).astype(int)
        assert np.abs(ours - _linear(hu, center, width)).max() <= 1, number
