"""STOW-RS against a running server (PS3.18 10.5, Table 10.5.3-1, Annex I)."""

from __future__ import annotations

import httpx

from tests.builders import make_instance, multipart, uid
from tests.conftest import RunningServer

FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"
RETRIEVE_URL = "00081190"


def post(
    server: RunningServer, parts: list[bytes], path: str = "/studies", **headers: str
) -> httpx.Response:
    body, content_type = multipart(parts)
    return httpx.post(
        server.dicomweb + path,
        content=body,
        headers={"content-type": content_type, "accept": "application/dicom+json", **headers},
    )


def test_all_stored_is_200_with_retrieve_urls(server: RunningServer) -> None:
    study, series = uid(), uid()
    sops = [uid() for _ in range(3)]
    parts = [make_instance(study_uid=study, series_uid=series, sop_uid=s) for s in sops]
    response = post(server, parts)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    body = response.json()
    assert body[RETRIEVE_URL]["Value"] == [f"{server.dicomweb}/studies/{study}"]
    items = body[REFERENCED_SOP_SEQUENCE]["Value"]
    assert [i["00081155"]["Value"][0] for i in items] == sops
    assert items[0][RETRIEVE_URL]["Value"][0] == (
        f"{server.dicomweb}/studies/{study}/series/{series}/instances/{sops[0]}"
    )
    assert FAILED_SOP_SEQUENCE not in body


def test_duplicate_is_kept_and_reported_as_warning_202(server: RunningServer) -> None:
    instance = make_instance()
    assert post(server, [instance]).status_code == 200
    response = post(server, [instance])
    assert response.status_code == 202
    item = response.json()[REFERENCED_SOP_SEQUENCE]["Value"][0]
    assert item[WARNING_REASON]["Value"] == [0xB111]


def test_study_uid_mismatch_is_409(server: RunningServer) -> None:
    response = post(server, [make_instance()], path=f"/studies/{uid()}")
    assert response.status_code == 409
    failed = response.json()[FAILED_SOP_SEQUENCE]["Value"][0]
    assert failed[FAILURE_REASON]["Value"] == [0xA901]


def test_partial_success_is_202_with_cannot_understand(server: RunningServer) -> None:
    good = make_instance()
    response = post(server, [good, b"this is not DICOM at all" * 10])
    assert response.status_code == 202
    body = response.json()
    assert len(body[REFERENCED_SOP_SEQUENCE]["Value"]) == 1
    assert body[FAILED_SOP_SEQUENCE]["Value"][0][FAILURE_REASON]["Value"] == [0xC000]
    assert "part 2" in response.headers["warning"]


def test_only_unreadable_parts_is_400(server: RunningServer) -> None:
    response = post(server, [b"garbage", b"\x00" * 200])
    assert response.status_code == 400


def test_empty_part_fails_with_cannot_understand(server: RunningServer) -> None:
    response = post(server, [make_instance(), b""])
    assert response.status_code == 202
    failed = response.json()[FAILED_SOP_SEQUENCE]["Value"]
    assert failed[0][FAILURE_REASON]["Value"] == [0xC000]


def test_unsupported_media_type_is_415(server: RunningServer) -> None:
    response = httpx.post(
        server.dicomweb + "/studies",
        content=make_instance(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 415


def test_missing_boundary_is_400(server: RunningServer) -> None:
    response = httpx.post(
        server.dicomweb + "/studies",
        content=b"x",
        headers={"content-type": 'multipart/related; type="application/dicom"'},
    )
    assert response.status_code == 400


def test_truncated_multipart_is_400_and_stores_nothing(server: RunningServer) -> None:
    sop = uid()
    body, content_type = multipart([make_instance(sop_uid=sop)])
    response = httpx.post(
        server.dicomweb + "/studies",
        content=body[: len(body) // 2],
        headers={"content-type": content_type},
    )
    assert response.status_code == 400
    found = httpx.get(server.dicomweb + "/instances", params={"SOPInstanceUID": sop})
    assert found.status_code == 204


def test_unacceptable_response_type_is_406(server: RunningServer) -> None:
    response = post(server, [make_instance()], accept="text/html")
    assert response.status_code == 406


def test_xml_response(server: RunningServer) -> None:
    response = post(server, [make_instance()], accept="application/dicom+xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+xml"
    assert b"NativeDicomModel" in response.content
    assert b'tag="00081199"' in response.content


def test_dicomweb_client_store(server: RunningServer) -> None:
    import io

    import pydicom
    from dicomweb_client.api import DICOMwebClient

    ds = pydicom.dcmread(io.BytesIO(make_instance()))
    client = DICOMwebClient(server.dicomweb)
    result = client.store_instances([ds])
    assert result[REFERENCED_SOP_SEQUENCE].value[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID


def test_malformed_body_after_stored_batches_reports_what_was_stored(
    server: RunningServer,
) -> None:
    """With more parts than one ingest batch, a body cut short still reports the committed
    instances (202), so the client does not resend or lose track of them."""
    sops = [uid() for _ in range(40)]
    body, content_type = multipart([make_instance(sop_uid=s) for s in sops])
    cut = body.rindex(b"--hounsfield-test-boundary") - 100  # inside the last part
    response = httpx.post(
        server.dicomweb + "/studies",
        content=body[:cut],
        headers={"content-type": content_type, "accept": "application/dicom+json"},
    )
    assert response.status_code == 202
    payload = response.json()
    stored = [i["00081155"]["Value"][0] for i in payload[REFERENCED_SOP_SEQUENCE]["Value"]]
    assert stored == sops[: len(stored)]
    assert len(stored) >= 32
    assert payload[FAILED_SOP_SEQUENCE]["Value"][-1][FAILURE_REASON]["Value"] == [0xC000]
    for sop in stored:
        found = httpx.get(server.dicomweb + "/instances", params={"SOPInstanceUID": sop})
        assert found.status_code == 200
