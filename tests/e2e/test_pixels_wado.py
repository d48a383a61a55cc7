"""WADO-RS transcoding on request through the real HTTP server (PS3.18 8.7.3, 10.4).

Each corpus file lives in its own partition (several share a SOP Instance UID). What comes
back is decoded independently of the server (pydicom parses, the codecs decode) and compared
with the pixels of the file as stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.conftest import RunningServer, start_server, stop_server, stow
from tests.pixelsupport import corpus_bytes, decode_file, split_multipart

FILES = {
    "ct": "CT_small.dcm",
    "j2k": "MR_small_jp2klossless.dcm",
    "rle": "SC_rgb_rle_16bit_2frame.dcm",
    "ybr": "examples_ybr_color.dcm",
    "bit": "liver_1frame.dcm",
    "be": "MR_small_bigendian.dcm",
    "dfl": "image_dfl.dcm",
    "sr": "rtplan.dcm",
}
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
RLE = "1.2.840.10008.1.2.5"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("pixels-wado") / "data")
    try:
        for partition, name in FILES.items():
            stow(f"{running.dicomweb}/partitions/{partition}", corpus_bytes(name))
        yield running
    finally:
        stop_server(running)


def uids(name: str) -> tuple[str, str, str]:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(corpus_bytes(name)), force=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def base(server: RunningServer, key: str) -> str:
    return f"{server.dicomweb}/partitions/{key}"


def instance_url(server: RunningServer, key: str) -> str:
    study, series, sop = uids(FILES[key])
    return f"{base(server, key)}/studies/{study}/series/{series}/instances/{sop}"


def stored_frames(key: str) -> list[np.ndarray[Any, Any]]:
    return decode_file(corpus_bytes(FILES[key]))[1]


def test_default_is_the_stored_bytes(server: RunningServer) -> None:
    response = httpx.get(instance_url(server, "j2k"), headers={"accept": "application/dicom"})
    assert response.status_code == 200
    assert response.content == corpus_bytes(FILES["j2k"])
    assert response.headers["content-type"].endswith(f"transfer-syntax={J2K}")


@pytest.mark.parametrize("key", ["ct", "j2k", "rle", "be", "dfl"])
@pytest.mark.parametrize("target", [EXPLICIT_LE, JPEG_LS, J2K, HTJ2K_RPCL, RLE])
def test_instance_transcoded_on_request(server: RunningServer, key: str, target: str) -> None:
    response = httpx.get(
        instance_url(server, key),
        headers={"accept": f"application/dicom; transfer-syntax={target}"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"application/dicom; transfer-syntax={target}"
    syntax, frames = decode_file(response.content)
    assert syntax == target
    for ours, original in zip(frames, stored_frames(key), strict=True):
        assert np.array_equal(ours, original)


def test_series_of_a_multiframe_lossy_image_is_streamed_in_the_requested_syntax(
    server: RunningServer,
) -> None:
    study, series, _ = uids(FILES["ybr"])
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={HTJ2K_RPCL}'
    with httpx.stream(
        "GET",
        f"{base(server, 'ybr')}/studies/{study}/series/{series}",
        headers={"accept": accept},
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not buffered
        body = response.read()
    ((part_type, payload),) = split_multipart(response.headers["content-type"], body)
    assert part_type == f"application/dicom; transfer-syntax={HTJ2K_RPCL}"
    syntax, frames = decode_file(payload)
    assert syntax == HTJ2K_RPCL and len(frames) == 30
    assert all(np.array_equal(a, b) for a, b in zip(frames, stored_frames("ybr"), strict=True))
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(payload))
    assert ds.PhotometricInterpretation == "YBR_RCT"
    assert ds.LossyImageCompression == "01"


def test_object_without_pixels_is_reencoded(server: RunningServer) -> None:
    study, _, _ = uids(FILES["sr"])
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={J2K}'
    response = httpx.get(f"{base(server, 'sr')}/studies/{study}", headers={"accept": accept})
    assert response.status_code == 200
    ((part_type, payload),) = split_multipart(response.headers["content-type"], response.content)
    assert part_type.endswith(J2K)
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(payload))
    original = pydicom.dcmread(pydicom.filebase.DicomBytesIO(corpus_bytes(FILES["sr"])))
    assert ds.file_meta.TransferSyntaxUID == J2K
    assert ds.SOPInstanceUID == original.SOPInstanceUID
    assert len(ds.BeamSequence) == len(original.BeamSequence)


@pytest.mark.parametrize(
    ("key", "accept"),
    [
        ("ct", "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50"),  # lossy: never
        ("bit", f"application/dicom; transfer-syntax={J2K}"),  # 1-bit in JPEG 2000
        ("ct", "application/dicom; transfer-syntax=1.2.3.4"),
    ],
)
def test_impossible_transcoding_is_406(server: RunningServer, key: str, accept: str) -> None:
    response = httpx.get(instance_url(server, key), headers={"accept": accept})
    assert response.status_code == 406


def test_next_acceptable_range_is_used_when_the_first_is_impossible(
    server: RunningServer,
) -> None:
    accept = f"application/dicom; transfer-syntax={J2K}, application/dicom; q=0.5"
    response = httpx.get(instance_url(server, "bit"), headers={"accept": accept})
    assert response.status_code == 200
    assert response.content == corpus_bytes(FILES["bit"])


def test_compressed_frames_as_native_octets(server: RunningServer) -> None:
    response = httpx.get(
        instance_url(server, "rle") + "/frames/2,1",
        headers={"accept": 'multipart/related; type="application/octet-stream"'},
    )
    assert response.status_code == 200
    parts = split_multipart(response.headers["content-type"], response.content)
    assert [t for t, _ in parts] == [f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"] * 2
    frames = stored_frames("rle")
    for (_, payload), number in zip(parts, (2, 1), strict=True):
        expected = frames[number - 1]
        assert (
            payload
            == np.ascontiguousarray(expected, dtype=expected.dtype.newbyteorder("<")).tobytes()
        )


def test_big_endian_frames_are_sent_little_endian(server: RunningServer) -> None:
    response = httpx.get(instance_url(server, "be") + "/frames/1", headers={"accept": "*/*"})
    ((part_type, payload),) = split_multipart(response.headers["content-type"], response.content)
    assert part_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert payload == stored_frames("be")[0].astype("<i2").tobytes()


@pytest.mark.parametrize(
    ("media", "syntax"),
    [("image/jls", JPEG_LS), ("image/jphc", "1.2.840.10008.1.2.4.201"), ("image/dicom-rle", RLE)],
)
def test_native_frames_in_a_compressed_media_type(
    server: RunningServer, media: str, syntax: str
) -> None:
    response = httpx.get(
        instance_url(server, "ct") + "/frames/1",
        headers={"accept": f'multipart/related; type="{media}"'},
    )
    assert response.status_code == 200, response.text
    ((part_type, payload),) = split_multipart(response.headers["content-type"], response.content)
    assert part_type == f"{media}; transfer-syntax={syntax}"
    import imagecodecs

    decoders = {
        JPEG_LS: imagecodecs.jpegls_decode,
        "1.2.840.10008.1.2.4.201": imagecodecs.htj2k_decode,
    }
    if syntax in decoders:
        decoded = decoders[syntax](payload).astype(np.uint16).view(np.int16)
        assert np.array_equal(decoded, stored_frames("ct")[0])
    else:
        assert payload[:4] == b"\x01\x00\x00\x00" or payload[:4] == b"\x02\x00\x00\x00"


def test_frames_in_a_syntax_of_another_media_type_are_406(server: RunningServer) -> None:
    response = httpx.get(
        instance_url(server, "ct") + "/frames/1",
        headers={"accept": f'multipart/related; type="image/jls"; transfer-syntax={J2K}'},
    )
    assert response.status_code == 406


def test_dicomweb_client_retrieves_transcoded_instances_and_frames(
    server: RunningServer,
) -> None:
    client = DICOMwebClient(url=base(server, "j2k"))
    study, series, sop = uids(FILES["j2k"])
    ds = client.retrieve_instance(
        study, series, sop, media_types=(("application/dicom", EXPLICIT_LE),)
    )
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(ds.pixel_array, stored_frames("j2k")[0])
    (frame,) = client.retrieve_instance_frames(
        study, series, sop, frame_numbers=[1], media_types=(("image/jls", JPEG_LS),)
    )
    import imagecodecs

    decoded = imagecodecs.jpegls_decode(frame).astype(np.uint16).view(np.int16)
    assert np.array_equal(decoded, stored_frames("j2k")[0])


def test_frames_of_a_deflated_instance(server: RunningServer) -> None:
    """PS3.5 A.5: the data set is deflated, so frames are decoded from the whole object."""
    response = httpx.get(instance_url(server, "dfl") + "/frames/1")
    assert response.status_code == 200, response.text
    ((part_type, payload),) = split_multipart(response.headers["content-type"], response.content)
    assert part_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert payload == stored_frames("dfl")[0].tobytes()


def test_single_instance_entity_tag(server: RunningServer) -> None:
    url = instance_url(server, "ct")
    stored = httpx.get(url, headers={"accept": "application/dicom"})
    transcoded = httpx.get(url, headers={"accept": f"application/dicom; transfer-syntax={RLE}"})
    assert stored.headers["etag"] != transcoded.headers["etag"]
    again = httpx.get(
        url,
        headers={
            "accept": f"application/dicom; transfer-syntax={RLE}",
            "if-none-match": transcoded.headers["etag"],
        },
    )
    assert again.status_code == 304 and again.content == b""
    repeat = httpx.get(url, headers={"accept": f"application/dicom; transfer-syntax={RLE}"})
    assert repeat.content == transcoded.content  # the tag is strong: same bytes every time


def test_frames_entity_tag(server: RunningServer) -> None:
    """The same frames in the same representation are the same bytes: a strong ETag."""
    url = instance_url(server, "rle") + "/frames/1,2"
    native = {"accept": 'multipart/related; type="application/octet-stream"'}
    first = httpx.get(url, headers=native)
    second = httpx.get(url, headers=native)
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    as_stored = httpx.get(url, headers={"accept": "*/*"})
    assert as_stored.headers["etag"] != first.headers["etag"]
    revalidated = httpx.get(url, headers={**native, "if-none-match": first.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""
