"""The real server with its blobs in S3 (moto on loopback), configured only through
HOUNSFIELD_BLOB_URL and the standard AWS variables: STOW-RS, WADO-RS and DELETE end to end,
`hounsfield check` on the bucket, and two replicas on one PostgreSQL index and one bucket."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.builders import make_dataset, multipart, to_bytes
from tests.conftest import RunningServer, hounsfield_cli, start_server, stop_server
from tests.s3support import BUCKET, MotoServer, shared_moto, unique_prefix


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> MotoServer:
    return shared_moto(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix("e2e")


@pytest.fixture(scope="module")
def s3_server(
    s3: MotoServer, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("s3-archive") / "data"
    env = {"HOUNSFIELD_BLOB_URL": f"s3://{BUCKET}/{prefix}", **s3.environ}
    running = start_server(data_dir, env)
    try:
        yield running
    finally:
        stop_server(running)


def test_stow_wado_frames_delete_through_s3(
    s3_server: RunningServer, s3: MotoServer, prefix: str
) -> None:
    ds = make_dataset(frames=3, rows=64, columns=64)
    data = to_bytes(ds)
    body, content_type = multipart([data])
    stored = httpx.post(
        s3_server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    )
    assert stored.status_code == 200, stored.text
    keys = s3.object_keys(BUCKET, prefix + "/")
    assert len(keys) == 1 and keys[0].endswith(".dcm"), keys
    assert not any((s3_server.data_dir / "blobs").rglob("*.dcm"))  # nothing on local disk

    instance = (
        f"{s3_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    single = httpx.get(instance, headers={"accept": "application/dicom; transfer-syntax=*"})
    assert single.status_code == 200
    assert single.content == data  # byte-identical, straight from the bucket

    client = DICOMwebClient(s3_server.dicomweb)
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1, 3]
    )
    frame_size = 64 * 64 * 2
    assert frames == [ds.PixelData[:frame_size], ds.PixelData[2 * frame_size :]]

    assert httpx.delete(f"{s3_server.dicomweb}/studies/{ds.StudyInstanceUID}").status_code == 204
    assert httpx.get(instance).status_code == 404
    assert s3.object_keys(BUCKET, prefix + "/") == []


def test_check_reads_and_lists_the_bucket(
    s3_server: RunningServer, s3: MotoServer, prefix: str
) -> None:
    """`hounsfield check` re-reads every object from the bucket and lists it for orphans."""
    ds = make_dataset()
    body, content_type = multipart([to_bytes(ds)])
    response = httpx.post(
        s3_server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text

    def check() -> subprocess.CompletedProcess[str]:
        blobs = {**s3.environ, "HOUNSFIELD_BLOB_URL": f"s3://{BUCKET}/{prefix}"}
        return hounsfield_cli(s3_server.data_dir, "check", "--quiet", extra_env=blobs)

    clean = check()
    assert clean.returncode == 0, clean.stderr
    assert "no problems" in clean.stderr
    s3.put_object(BUCKET, f"{prefix}/stray/object.dcm", b"not indexed")
    found = check()
    assert "orphan: stray/object.dcm" in found.stderr, found.stderr


def test_two_replicas_share_postgresql_and_the_bucket(
    s3: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The scaled configuration of issue 5: two stateless servers, each with its own data_dir
    (staging only), one PostgreSQL index and one bucket. An instance stored through one is
    retrieved, byte for byte, and deleted through the other."""
    from tests.contract.conftest import PostgresSchemas, require_postgres

    url = require_postgres()
    schema = f"hf_s3_{secrets.token_hex(6)}"
    prefix = unique_prefix("replicas")
    env = {
        "HOUNSFIELD_INDEX_URL": f"{url}?schema={schema}&pool_max=4",
        "HOUNSFIELD_BLOB_URL": f"s3://{BUCKET}/{prefix}",
        **s3.environ,
    }
    servers: list[RunningServer] = []
    try:
        for name in ("replica-a", "replica-b"):
            servers.append(start_server(tmp_path_factory.mktemp(name) / "data", env))
        a, b = servers
        ds = make_dataset(frames=2, rows=32, columns=32)
        data = to_bytes(ds)
        body, content_type = multipart([data])
        stored = httpx.post(
            a.dicomweb + "/studies", content=body, headers={"content-type": content_type}
        )
        assert stored.status_code == 200, stored.text
        instance = (
            f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        got = httpx.get(
            b.dicomweb + instance, headers={"accept": "application/dicom; transfer-syntax=*"}
        )
        assert got.status_code == 200
        assert got.content == data
        assert len(s3.object_keys(BUCKET, prefix + "/")) == 1
        assert httpx.delete(f"{b.dicomweb}/studies/{ds.StudyInstanceUID}").status_code == 204
        assert httpx.get(a.dicomweb + instance).status_code == 404
        assert s3.object_keys(BUCKET, prefix + "/") == []
    finally:
        for server in servers:
            stop_server(server)
        PostgresSchemas(url).drop(schema)
