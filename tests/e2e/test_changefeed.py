"""The DICOMweb change feed and the event relay against a running server: STOW and DELETE show
up as create/delete entries with increasing Sequence, pages by offset/limit, partitions see
only their own entries, and with bus_url=redis:// the relay publishes the same events as
CloudEvents to the real Redis."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import make_instance, multipart, uid
from tests.conftest import RunningServer, require_component, start_server, stop_server
from tests.servicesupport import BUS_URLS, reachable

STREAM = f"hftest-e2e-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("changefeed") / "data"
    env = {}
    if reachable(BUS_URLS["redis"]):
        env["HOUNSFIELD_BUS_URL"] = f"{BUS_URLS['redis']}?name={STREAM}"
    running = start_server(data_dir, env)
    try:
        yield running
    finally:
        stop_server(running)


def stow(root: str, parts: list[bytes]) -> None:
    body, content_type = multipart(parts)
    response = httpx.post(
        f"{root}/studies",
        content=body,
        headers={"content-type": content_type, "accept": "application/dicom+json"},
    )
    assert response.status_code == 200, response.text


def feed(root: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{root}/changefeed", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    entries: list[dict[str, Any]] = response.json()
    return entries


def test_stow_and_delete_appear_in_order(archive: RunningServer) -> None:
    root = archive.url + "/dicom-web/partitions/feed1"
    study, series = uid(), uid()
    sops = [uid() for _ in range(3)]
    stow(root, [make_instance(study_uid=study, series_uid=series, sop_uid=s) for s in sops])
    assert httpx.delete(f"{root}/studies/{study}/series/{series}/instances/{sops[0]}").is_success
    entries = feed(root, limit=100)
    assert [(e["SopInstanceUid"], e["Action"]) for e in entries] == [
        *((s, "create") for s in sops),
        (sops[0], "delete"),
    ]
    seqs = [e["Sequence"] for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert {e["StudyInstanceUid"] for e in entries} == {study}
    assert {e["SeriesInstanceUid"] for e in entries} == {series}
    assert [e["State"] for e in entries] == ["deleted", "current", "current", "deleted"]
    assert all(e["Timestamp"].endswith("Z") for e in entries)
    # Metadata: by default (as the Azure DICOM service) for current instances only.
    current = entries[1]
    assert current["Metadata"]["00080018"]["Value"] == [sops[1]]
    assert "Metadata" not in entries[0]
    assert all("Metadata" not in e for e in feed(root, limit=100, includemetadata="false"))

    latest = httpx.get(f"{root}/changefeed/latest").json()
    assert latest["Sequence"] == seqs[-1] and latest["Action"] == "delete"

    # Deleting the study lists each remaining instance once more, as deleted.
    assert httpx.delete(f"{root}/studies/{study}").is_success
    after = feed(root, offset=seqs[-1], limit=100)
    assert sorted(e["SopInstanceUid"] for e in after) == sorted(sops[1:])
    assert {e["Action"] for e in after} == {"delete"}


def test_offset_and_limit_page_by_sequence(archive: RunningServer) -> None:
    root = archive.url + "/dicom-web/partitions/feed2"
    sops = [uid() for _ in range(7)]
    study = uid()
    stow(root, [make_instance(study_uid=study, sop_uid=s) for s in sops])
    seen: list[str] = []
    offset = 0
    for _ in range(10):
        page = feed(root, offset=offset, limit=3, includemetadata="false")
        if not page:
            break
        assert len(page) <= 3
        seen += [e["SopInstanceUid"] for e in page]
        offset = page[-1]["Sequence"]
    assert seen == sops
    assert feed(root, offset=offset) == []
    assert httpx.get(f"{root}/changefeed", params={"limit": 0}).status_code == 400
    assert httpx.get(f"{root}/changefeed", params={"offset": "x"}).status_code == 400


def test_partitions_see_only_their_own_changes(archive: RunningServer) -> None:
    a = archive.url + "/dicom-web/partitions/feed-a"
    b = archive.url + "/dicom-web/partitions/feed-b"
    sop_a, sop_b = uid(), uid()
    stow(a, [make_instance(sop_uid=sop_a)])
    stow(b, [make_instance(sop_uid=sop_b)])
    assert [e["SopInstanceUid"] for e in feed(a, limit=100)] == [sop_a]
    assert [e["SopInstanceUid"] for e in feed(b, limit=100)] == [sop_b]
    assert sop_a not in {e["SopInstanceUid"] for e in feed(archive.dicomweb, limit=1000)}
    assert httpx.get(f"{archive.url}/dicom-web/partitions/empty-p/changefeed/latest").json() == {}


def test_relay_publishes_cloudevents_to_redis(archive: RunningServer, tmp_path: Path) -> None:
    require_component("Redis", reachable(BUS_URLS["redis"]))
    from hounsfield.adapters.bus.redis import RedisStreamBus

    bus = RedisStreamBus(f"{BUS_URLS['redis']}?name={STREAM}", "urn:test")
    try:
        bus.declare("e2e")
        root = archive.url + "/dicom-web/partitions/feed-bus"
        sop = uid()
        stow(root, [make_instance(sop_uid=sop)])
        got = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            d.event.data.get("sopInstanceUID") == sop for d in got
        ):
            got += bus.fetch("e2e", 100, 0.5)
        (mine,) = [d.event for d in got if d.event.data.get("sopInstanceUID") == sop]
        assert mine.type == "hounsfield.instance.stored" and mine.partition == "feed-bus"
        (entry,) = feed(root, includemetadata="false")
        assert entry["Sequence"] == mine.seq
        raw = bus.client.xrange(STREAM, count=1)
        assert raw[0][1][b"ce"].startswith(b'{"specversion":"1.0"')
    finally:
        bus.destroy()
        bus.close()


def test_latest_follows_new_changes(archive: RunningServer) -> None:
    root = archive.url + "/dicom-web/partitions/feed-latest"
    assert httpx.get(f"{root}/changefeed/latest").json() == {}
    for _ in range(2):
        sop = uid()
        stow(root, [make_instance(sop_uid=sop)])
        latest = httpx.get(f"{root}/changefeed/latest", params={"includemetadata": "false"})
        assert latest.json()["SopInstanceUid"] == sop
        assert "Metadata" not in latest.json()


def test_several_http_workers_relay_each_event_once(tmp_path: Path) -> None:
    """Workers share a data_dir: the relay lock lets exactly one of them publish."""
    require_component("Redis", reachable(BUS_URLS["redis"]))
    import redis

    name = f"hftest-workers-{secrets.token_hex(4)}"
    server = start_server(
        tmp_path / "data",
        {
            "HOUNSFIELD_HTTP_WORKERS": "2",
            "HOUNSFIELD_BUS_URL": f"{BUS_URLS['redis']}?name={name}",
            "HOUNSFIELD_DIMSE_ENABLED": "false",
        },
    )
    client = redis.Redis.from_url(BUS_URLS["redis"])
    try:
        for _ in range(4):
            stow(server.dicomweb, [make_instance(sop_uid=uid())])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and client.xlen(name) < 4:
            time.sleep(0.1)
        time.sleep(1.5)  # a second relay, if there were one, would have published by now
        assert client.xlen(name) == 4
    finally:
        stop_server(server)
        client.delete(name)
        client.close()
