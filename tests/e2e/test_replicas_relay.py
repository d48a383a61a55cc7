"""Replicas with separate data directories on one PostgreSQL index relay each event once
(ADR 0012): the outbox relay is a lease in the index, so a second replica, or a replica that
restarts, neither duplicates the stream nor starts it over, and a survivor takes over when
the relaying replica stops."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import make_dataset, multipart, to_bytes
from tests.conftest import RunningServer, require_component, start_server, stop_server
from tests.contract.conftest import PostgresSchemas, require_postgres

pytestmark = pytest.mark.services


@pytest.fixture
def redis_client() -> Iterator[object]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        client.ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    require_component("Redis on 127.0.0.1:6379", reachable)
    yield client
    client.close()


def stow(server: RunningServer, count: int) -> None:
    body, content_type = multipart([to_bytes(make_dataset()) for _ in range(count)])
    response = httpx.post(
        f"{server.dicomweb}/studies", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text


def wait_for_length(client: object, stream: str, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    length = -1
    while time.monotonic() < deadline:
        length = int(client.xlen(stream))  # type: ignore[attr-defined]
        if length >= expected:
            break
        time.sleep(0.2)
    assert length == expected


def test_one_relay_for_all_replicas(redis_client: object, tmp_path: Path) -> None:
    url = require_postgres()
    schema = f"hf_relay_{secrets.token_hex(6)}"
    stream = f"hf-test-{secrets.token_hex(6)}"
    env = {
        "HOUNSFIELD_INDEX_URL": f"{url}?schema={schema}&pool_max=4",
        "HOUNSFIELD_BLOB_URL": f"file://{tmp_path}/blobs",
        "HOUNSFIELD_BUS_URL": f"redis://127.0.0.1:6379/0?name={stream}",
    }
    servers: list[RunningServer] = []
    try:
        for n in range(2):
            (tmp_path / f"replica-{n}").mkdir()
            servers.append(start_server(tmp_path / f"replica-{n}" / "data", env))
        stow(servers[0], 4)
        stow(servers[1], 3)
        wait_for_length(redis_client, stream, 7)
        time.sleep(1.5)
        assert int(redis_client.xlen(stream)) == 7  # type: ignore[attr-defined]

        # A replica that restarts (a fresh data_dir, as a new pod) does not relay again.
        stop_server(servers.pop(1))
        (tmp_path / "replica-2").mkdir()
        servers.append(start_server(tmp_path / "replica-2" / "data", env))
        time.sleep(2)
        assert int(redis_client.xlen(stream)) == 7  # type: ignore[attr-defined]

        # Whichever replica relays, stopping it hands the relay to the other one.
        stop_server(servers.pop(0))
        stow(servers[0], 2)
        wait_for_length(redis_client, stream, 9)
    finally:
        for server in servers:
            stop_server(server)
        redis_client.delete(stream)  # type: ignore[attr-defined]
        PostgresSchemas(url).drop(schema)
