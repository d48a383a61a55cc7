"""QIDO-RS, WADO-RS and DELETE against a running server (PS3.18 10.4, 10.6, 8.7)."""

from __future__ import annotations

import gzip
import io

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.builders import make_dataset, make_instance, multipart, to_bytes, uid
from tests.conftest import RunningServer


def store(server: RunningServer, parts: list[bytes], partition: str | None = None) -> None:
    body, content_type = multipart(parts)
    base = server.dicomweb + (f"/partitions/{partition}" if partition else "")
    response = httpx.post(base + "/studies", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def archive(server: RunningServer) -> dict[str, object]:
    """Two studies of one patient plus one of another, in the default partition."""
    tag = uid()[-8:]
    patient = f"QW-{tag}"
    study_a, study_b, study_c = uid(), uid(), uid()
    series_a1, series_a2 = uid(), uid()
    parts = [
        make_instance(
            study_uid=study_a,
            series_uid=series_a1,
            patient_id=patient,
            patient_name=f"Smith^Anna{tag}",
            study_date="20230110",
            modality="CT",
            instance_number=i + 1,
        )
        for i in range(3)
    ]
    parts.append(
        make_instance(
            study_uid=study_a,
            series_uid=series_a2,
            patient_id=patient,
            patient_name=f"Smith^Anna{tag}",
            study_date="20230110",
            modality="SR",
        )
    )
    parts.append(
        make_instance(
            study_uid=study_b,
            patient_id=patient,
            patient_name=f"Smith^Anna{tag}",
            study_date="20240220",
            modality="MR",
        )
    )
    parts.append(
        make_instance(
            study_uid=study_c,
            patient_id=f"OTHER-{tag}",
            patient_name=f"Jones^Bob{tag}",
            study_date="20240221",
            modality="CT",
        )
    )
    store(server, parts)
    return {
        "patient": patient,
        "tag": tag,
        "a": study_a,
        "b": study_b,
        "c": study_c,
        "a1": series_a1,
        "a2": series_a2,
    }


def qido(server: RunningServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(server.dicomweb + path, params=params)


def uids(response: httpx.Response, tag: str = "0020000D") -> list[str]:
    if response.status_code == 204:
        return []
    return [r[tag]["Value"][0] for r in response.json()]


def test_studies_by_patient_id(server: RunningServer, archive: dict[str, object]) -> None:
    response = qido(server, "/studies", PatientID=str(archive["patient"]))
    assert response.status_code == 200
    assert sorted(uids(response)) == sorted([archive["a"], archive["b"]])
    study_a = next(r for r in response.json() if r["0020000D"]["Value"][0] == archive["a"])
    assert study_a["00080061"]["Value"] == ["CT", "SR"]
    assert study_a["00201206"]["Value"] == [2]
    assert study_a["00201208"]["Value"] == [4]
    assert study_a["00081190"]["Value"][0].endswith(f"/studies/{archive['a']}")


def test_name_wildcard_is_case_insensitive_for_pn(
    server: RunningServer, archive: dict[str, object]
) -> None:
    response = qido(server, "/studies", PatientName=f"smith^anna{str(archive['tag']).lower()}*")
    assert sorted(uids(response)) == sorted([archive["a"], archive["b"]])


def test_wildcard_on_other_vrs_is_case_sensitive(
    server: RunningServer, archive: dict[str, object]
) -> None:
    assert qido(server, "/studies", PatientID=f"qw-{archive['tag']}*").status_code == 204
    assert uids(qido(server, "/studies", PatientID=f"QW-{archive['tag']}*"))


def test_date_range(server: RunningServer, archive: dict[str, object]) -> None:
    response = qido(server, "/studies", PatientID=str(archive["patient"]), StudyDate="20240101-")
    assert uids(response) == [archive["b"]]


def test_modalities_in_study(server: RunningServer, archive: dict[str, object]) -> None:
    response = qido(server, "/studies", ModalitiesInStudy="SR", PatientID=str(archive["patient"]))
    assert uids(response) == [archive["a"]]


def test_uid_list_matching(server: RunningServer, archive: dict[str, object]) -> None:
    response = qido(server, "/studies", StudyInstanceUID=f"{archive['a']},{archive['c']}")
    assert sorted(uids(response)) == sorted([archive["a"], archive["c"]])


def test_series_of_a_study_and_instances_of_a_series(
    server: RunningServer, archive: dict[str, object]
) -> None:
    series = qido(server, f"/studies/{archive['a']}/series")
    assert sorted(uids(series, "0020000E")) == sorted([archive["a1"], archive["a2"]])
    ct = qido(server, f"/studies/{archive['a']}/series", Modality="CT")
    row = ct.json()[0]
    assert row["00201209"]["Value"] == [3]
    instances = qido(server, f"/studies/{archive['a']}/series/{archive['a1']}/instances")
    assert len(instances.json()) == 3
    assert qido(server, f"/studies/{archive['a']}/instances").status_code == 200
    assert len(qido(server, f"/studies/{archive['a']}/instances").json()) == 4


def test_limit_offset_and_warning(server: RunningServer, archive: dict[str, object]) -> None:
    patient = str(archive["patient"])
    first = qido(server, "/studies", PatientID=patient, limit="1")
    assert len(first.json()) == 1
    assert "additional results" in first.headers["warning"]
    second = qido(server, "/studies", PatientID=patient, limit="1", offset="1")
    assert len(second.json()) == 1
    assert uids(first) != uids(second)


def test_includefield(server: RunningServer, archive: dict[str, object]) -> None:
    plain = qido(server, "/studies", StudyInstanceUID=str(archive["a"])).json()[0]
    assert "00081030" not in plain  # StudyDescription is not a default return key
    extra = qido(
        server, "/studies", StudyInstanceUID=str(archive["a"]), includefield="StudyDescription"
    ).json()[0]
    assert extra["00081030"]["Value"] == ["Synthetic study"]
    everything = qido(
        server, "/studies", StudyInstanceUID=str(archive["a"]), includefield="all"
    ).json()[0]
    assert "00100030" in everything


def test_bad_values_are_400_and_unknown_parameters_ignored(
    server: RunningServer, archive: dict[str, object]
) -> None:
    assert qido(server, "/studies", StudyDate="2024-01-01").status_code == 400
    assert qido(server, "/studies", limit="-1").status_code == 400
    assert qido(server, "/studies", includefield="NoSuchKeyword").status_code == 400
    ignored = qido(server, "/studies", PatientID=str(archive["patient"]), _="12345")
    assert ignored.status_code == 200


def test_no_match_is_204(server: RunningServer) -> None:
    assert qido(server, "/studies", PatientID="no-such-patient").status_code == 204


def test_xml_search_results(server: RunningServer, archive: dict[str, object]) -> None:
    response = httpx.get(
        server.dicomweb + "/studies",
        params={"StudyInstanceUID": str(archive["a"])},
        headers={"accept": 'multipart/related; type="application/dicom+xml"'},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related")
    assert str(archive["a"]).encode() in response.content


def test_retrieve_instance_bytes_are_untouched(server: RunningServer) -> None:
    data = make_instance()
    ds = pydicom.dcmread(io.BytesIO(data))
    store(server, [data])
    client = DICOMwebClient(server.dicomweb)
    retrieved = client.retrieve_instance(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert retrieved.SOPInstanceUID == ds.SOPInstanceUID
    url = (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    single = httpx.get(url, headers={"accept": "application/dicom; transfer-syntax=*"})
    assert single.status_code == 200
    assert single.content == data


def test_unavailable_transfer_syntax_is_406(server: RunningServer) -> None:
    ds = make_dataset()
    store(server, [to_bytes(ds)])
    url = f"{server.dicomweb}/studies/{ds.StudyInstanceUID}"
    response = httpx.get(
        url,
        headers={
            "accept": 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.4.50"
        },
    )
    assert response.status_code == 406


def test_metadata_equals_pydicom_json(server: RunningServer) -> None:
    ds = make_dataset(rows=32, columns=32)  # 2 KiB of pixels: above the bulk data threshold
    store(server, [to_bytes(ds)])
    url = f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/metadata"
    response = httpx.get(
        url, headers={"accept": "application/dicom+json", "accept-encoding": "gzip"}
    )
    assert response.status_code == 200
    (document,) = response.json()
    instance_url = (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    assert document["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{instance_url}/bulkdata/7FE00010"}
    expected = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda e: "x")
    for tag, element in expected.items():
        if "BulkDataURI" not in element:
            assert document[tag] == element, tag


def test_metadata_is_gzipped_when_accepted(server: RunningServer) -> None:
    ds = make_dataset()
    store(server, [to_bytes(ds)])
    url = f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/metadata"
    raw = httpx.get(url, headers={"accept-encoding": "gzip"}).raise_for_status()
    assert raw.json()[0]["00080018"]["Value"] == [ds.SOPInstanceUID]
    with httpx.stream("GET", url, headers={"accept-encoding": "gzip"}) as streamed:
        assert streamed.headers.get("content-encoding") == "gzip"
        compressed = b"".join(streamed.iter_raw())
    assert gzip.decompress(compressed).startswith(b"[")


def test_frames_and_bulkdata(server: RunningServer) -> None:
    ds = make_dataset(frames=3, rows=8, columns=8)
    store(server, [to_bytes(ds)])
    client = DICOMwebClient(server.dicomweb)
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[2, 3]
    )
    frame_size = 8 * 8 * 2
    assert frames == [ds.PixelData[frame_size : 2 * frame_size], ds.PixelData[2 * frame_size :]]
    base = (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    assert httpx.get(base + "/frames/4").status_code == 404
    assert httpx.get(base + "/frames/0").status_code == 400
    assert httpx.get(base + "/frames/x").status_code == 400
    bulk = httpx.get(base + "/bulkdata/7FE00010", headers={"accept": "application/octet-stream"})
    assert bulk.status_code == 200
    assert bulk.content == ds.PixelData


def test_retrieve_unknown_is_404_and_bad_uid_400(server: RunningServer) -> None:
    assert httpx.get(f"{server.dicomweb}/studies/1.2.3.999999").status_code == 404
    assert httpx.get(f"{server.dicomweb}/studies/not-a-uid/metadata").status_code == 400


def test_delete_instance_series_study(server: RunningServer) -> None:
    study, series = uid(), uid()
    sops = [uid(), uid(), uid()]
    other_series = uid()
    store(
        server,
        [make_instance(study_uid=study, series_uid=series, sop_uid=s) for s in sops]
        + [make_instance(study_uid=study, series_uid=other_series)],
    )
    base = f"{server.dicomweb}/studies/{study}"
    assert httpx.delete(f"{base}/series/{series}/instances/{sops[0]}").status_code == 204
    assert httpx.get(f"{base}/series/{series}/instances/{sops[0]}").status_code == 404
    row = qido(server, "/studies", StudyInstanceUID=study).json()[0]
    assert row["00201208"]["Value"] == [3]
    assert httpx.delete(f"{base}/series/{series}").status_code == 204
    assert httpx.delete(f"{base}/series/{series}").status_code == 404
    assert httpx.delete(base).status_code == 204
    assert qido(server, "/studies", StudyInstanceUID=study).status_code == 204
    assert not (server.data_dir / "blobs" / "default" / study).exists()


def test_partitions_are_isolated(server: RunningServer) -> None:
    ds = make_dataset()
    store(server, [to_bytes(ds)], partition="tenant-a")
    assert qido(server, "/studies", StudyInstanceUID=ds.StudyInstanceUID).status_code == 204
    scoped = httpx.get(
        f"{server.dicomweb}/partitions/tenant-a/studies",
        params={"StudyInstanceUID": ds.StudyInstanceUID},
    )
    assert scoped.status_code == 200
    assert scoped.json()[0]["00081190"]["Value"][0].startswith(
        f"{server.dicomweb}/partitions/tenant-a/"
    )
    assert httpx.get(f"{server.dicomweb}/studies/{ds.StudyInstanceUID}").status_code == 404
    assert httpx.delete(f"{server.dicomweb}/studies/{ds.StudyInstanceUID}").status_code == 404


def test_head_has_the_header_fields_of_get_and_no_content(server: RunningServer) -> None:
    """RFC 9110 9.3.2: HEAD answers with the status and header fields GET would, Content-Length
    included, without the content; a streamed GET (no length known) gives none."""
    data = make_instance()
    ds = pydicom.dcmread(io.BytesIO(data))
    store(server, [data])
    instance = (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    for url, accept in (
        (f"{instance}/metadata", "application/dicom+json"),
        (f"{server.dicomweb}/studies", "application/dicom+json"),
        (f"{instance}/frames/1", 'multipart/related; type="application/octet-stream"'),
    ):
        headers = {"accept": accept, "accept-encoding": "identity"}
        got, head = httpx.get(url, headers=headers), httpx.head(url, headers=headers)
        assert got.status_code == head.status_code == 200, url
        assert head.content == b""
        assert head.headers["content-length"] == str(len(got.content)), url
        media = head.headers["content-type"].split(";")[0]
        assert media == got.headers["content-type"].split(";")[0], url
    missing = httpx.head(f"{server.dicomweb}/studies/{uid()}/metadata")
    assert missing.status_code == 404 and missing.content == b""
