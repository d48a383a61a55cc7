"""WADO-URI (PS3.18 9) through the real HTTP server: DICOM objects, transcoded objects and
rendered images, at /wado and under /dicom-web (with partitions)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import imagecodecs
import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.builders import multipart
from tests.conftest import RunningServer, start_server, stop_server
from tests.pixelsupport import corpus_bytes, decode_file

CT = "CT_small.dcm"
YBR = "examples_ybr_color.dcm"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("wado-uri") / "data")
    try:
        for name, partition in ((CT, None), (YBR, None), (CT, "other")):
            body, content_type = multipart([corpus_bytes(name)])
            base = running.dicomweb + (f"/partitions/{partition}" if partition else "")
            response = httpx.post(
                base + "/studies", content=body, headers={"content-type": content_type}
            )
            assert response.status_code == 200, response.text
        yield running
    finally:
        stop_server(running)


def query(name: str, **extra: str) -> dict[str, str]:
    ds = pydicom.dcmread(io.BytesIO(corpus_bytes(name)), force=True)
    return {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
        **extra,
    }


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_default_is_a_jpeg(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/wado", params=query(CT))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert picture(response.content).size == (128, 128)


def test_dicom_object_untouched_and_transcoded(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/wado", params=query(CT, contentType="application/dicom"))
    assert response.content == corpus_bytes(CT)
    lossless = "1.2.840.10008.1.2.4.80"
    response = httpx.get(
        f"{server.url}/wado",
        params=query(CT, contentType="application/dicom", transferSyntax=lossless),
    )
    assert response.headers["content-type"] == f"application/dicom; transfer-syntax={lossless}"
    syntax, frames = decode_file(response.content)
    assert syntax == lossless
    assert np.array_equal(frames[0], decode_file(corpus_bytes(CT))[1][0])


def test_rows_columns_region_window_and_quality(server: RunningServer) -> None:
    params = query(
        CT,
        contentType="image/png",
        rows="64",
        region="0.0,0.0,0.5,0.5",
        windowCenter="40",
        windowWidth="400",
    )
    response = httpx.get(f"{server.url}/wado", params=params)
    image = imagecodecs.png_decode(response.content).astype(int)
    assert image.shape == (64, 64)
    ds = pydicom.dcmread(io.BytesIO(corpus_bytes(CT)))
    hu = ds.pixel_array[:64, :64] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.clip(((hu - 39.5) / 399 + 0.5) * 255, 0, 255)
    assert np.abs(image - np.rint(expected)).max() <= 1
    low = httpx.get(f"{server.url}/wado", params=query(CT, imageQuality="10"))
    high = httpx.get(f"{server.url}/wado", params=query(CT, imageQuality="100"))
    assert len(low.content) < len(high.content)


def test_frame_number_and_animated_gif(server: RunningServer) -> None:
    frame = httpx.get(f"{server.url}/wado", params=query(YBR, frameNumber="5", columns="160"))
    assert picture(frame.content).size == (160, 120)
    gif = picture(
        httpx.get(f"{server.url}/wado", params=query(YBR, contentType="image/gif")).content
    )
    assert gif.n_frames > 20  # type: ignore[attr-defined]


def test_partitions_under_dicom_web(server: RunningServer) -> None:
    response = httpx.get(
        f"{server.dicomweb}/partitions/other/wado",
        params=query(CT, contentType="application/dicom"),
    )
    assert response.content == corpus_bytes(CT)
    missing = httpx.get(f"{server.dicomweb}/partitions/empty/wado", params=query(CT))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"requestType": "WADO-RS"}, 400),
        ({"objectUID": ""}, 400),
        ({"studyUID": "1.2.3.x"}, 400),
        ({"objectUID": "1.2.3.4"}, 404),
        ({"contentType": "text/html"}, 406),
        ({"contentType": "application/dicom", "transferSyntax": "1.2.840.10008.1.2.4.50"}, 406),
        ({"transferSyntax": "1.2.840.10008.1.2.1"}, 400),
        ({"windowCenter": "40"}, 400),
        ({"region": "0.5,0.5,0.2,0.9"}, 400),
        ({"frameNumber": "2"}, 400),
        ({"anonymize": "yes"}, 400),
        ({"imageQuality": "101"}, 400),
    ],
)
def test_errors(server: RunningServer, change: dict[str, str], status: int) -> None:
    params = {**query(CT), **change}
    assert httpx.get(f"{server.url}/wado", params=params).status_code == status
