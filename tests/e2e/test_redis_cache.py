"""The real server with HOUNSFIELD_CACHE_URL=redis://… (issue 5): WADO-RS metadata is served
through the cache, DELETE removes the cached documents, and an instance deleted and stored
again with other content under the same UIDs is served with its new document."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.builders import make_dataset, to_bytes
from tests.conftest import RunningServer, require_component, start_server, stop_server, stow
from tests.servicesupport import REDIS_URL, drop_prefix, reachable


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    require_component("Redis", reachable(REDIS_URL))
    name = f"hftest-e2e-{secrets.token_hex(6)}:"
    yield name
    drop_prefix(name)


@pytest.fixture(scope="module")
def cached_server(prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("redis-cache") / "data"
    running = start_server(data_dir, {"HOUNSFIELD_CACHE_URL": f"{REDIS_URL}?prefix={prefix}"})
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    yield connection
    connection.close()


def metadata(url: str) -> list[dict[str, object]]:
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    documents: list[dict[str, object]] = response.json()
    return documents


def value(document: dict[str, object], tag: str) -> object:
    element = document[tag]
    assert isinstance(element, dict)
    return element["Value"][0]


def test_metadata_through_redis_and_after_delete_and_store_again(
    cached_server: RunningServer, prefix: str, client: redis.Redis
) -> None:
    first = make_dataset(patient_name="Cache^First", patient_id="CACHE-1", instance_number=1)
    second = make_dataset(
        study_uid=first.StudyInstanceUID,
        series_uid=first.SeriesInstanceUID,
        patient_name="Cache^First",
        patient_id="CACHE-1",
        instance_number=2,
    )
    stow(cached_server.dicomweb, to_bytes(first), to_bytes(second))
    series_url = (
        f"{cached_server.dicomweb}/studies/{first.StudyInstanceUID}"
        f"/series/{first.SeriesInstanceUID}/metadata"
    )
    keys = [f"{prefix}md:default:{ds.SOPInstanceUID}".encode() for ds in (first, second)]

    served = metadata(series_url)
    assert [value(d, "00080018") for d in served] == [first.SOPInstanceUID, second.SOPInstanceUID]
    assert [value(d, "00100020") for d in served] == ["CACHE-1", "CACHE-1"]
    assert client.exists(*keys) == 2  # both documents are now in Redis

    # The next request is answered from Redis: a marker put into the cached document (after
    # its version line, which stays as the server wrote it) comes back to the client.
    version, document = client.get(keys[0]).split(b"\n", 1)
    marked = document.replace(b"CACHE-1", b"CACHE-X")
    assert marked != document
    client.set(keys[0], version + b"\n" + marked)
    assert [value(d, "00100020") for d in metadata(series_url)] == ["CACHE-X", "CACHE-1"]

    # DELETE removes the cached documents; the same UIDs stored again with other content are
    # served with the new content, never the cached one.
    instance_url = series_url.removesuffix("/metadata") + f"/instances/{first.SOPInstanceUID}"
    assert httpx.delete(instance_url).status_code == 204
    assert client.exists(keys[0]) == 0
    assert [value(d, "00080018") for d in metadata(series_url)] == [second.SOPInstanceUID]

    client.set(keys[0], version + b"\n" + marked)  # as if another replica had missed the delete
    again = make_dataset(
        study_uid=first.StudyInstanceUID,
        series_uid=first.SeriesInstanceUID,
        sop_uid=first.SOPInstanceUID,
        patient_name="Cache^First",
        patient_id="CACHE-1",
        instance_number=1,
        SeriesDescription="Stored again",
    )
    stow(cached_server.dicomweb, to_bytes(again))
    served = metadata(series_url)
    assert [value(d, "00080018") for d in served] == [first.SOPInstanceUID, second.SOPInstanceUID]
    assert value(served[0], "0008103E") == "Stored again"  # SeriesDescription of the new object
    assert value(served[0], "00100020") == "CACHE-1"  # not the stale marked document
    assert client.get(keys[0]).split(b"\n", 1)[0] != version

    study_url = f"{cached_server.dicomweb}/studies/{first.StudyInstanceUID}"
    assert httpx.delete(study_url).status_code == 204
    assert client.exists(*keys) == 0
    assert httpx.get(study_url + "/metadata").status_code == 404
