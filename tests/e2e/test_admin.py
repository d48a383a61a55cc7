"""Admin API, CORS and capabilities against a running server."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.builders import make_instance, multipart
from tests.conftest import RunningServer, start_server, stop_server


def test_health(server: RunningServer) -> None:
    response = httpx.get(server.url + "/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_remote_ae_registry(server: RunningServer) -> None:
    url = server.url + "/api/remote-aes/PACS1"
    assert httpx.put(url, json={"host": "10.0.0.5", "port": 104}).status_code == 201
    assert httpx.put(url, json={"host": "10.0.0.6", "port": 104}).status_code == 200
    assert httpx.get(url).json()["host"] == "10.0.0.6"
    assert any(ae["aet"] == "PACS1" for ae in httpx.get(server.url + "/api/remote-aes").json())
    assert httpx.put(url, json={"host": "x", "port": 70000}).status_code == 400
    assert httpx.put(url, json={"host": "x", "port": 104, "colour": "red"}).status_code == 400
    assert (
        httpx.put(
            server.url + "/api/remote-aes/" + "A" * 17, json={"host": "x", "port": 1}
        ).status_code
        == 400
    )
    assert httpx.delete(url).status_code == 204
    assert httpx.get(url).status_code == 404
    assert httpx.delete(url).status_code == 404


def test_stats_count_what_was_stored(server: RunningServer) -> None:
    before = httpx.get(server.url + "/api/stats").json()["total"]
    body, content_type = multipart([make_instance()])
    httpx.post(
        server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    ).raise_for_status()
    after = httpx.get(server.url + "/api/stats").json()["total"]
    assert after["instances"] == before["instances"] + 1
    assert after["studies"] == before["studies"] + 1
    assert after["bytes"] > before["bytes"]


def test_openapi_document(server: RunningServer) -> None:
    document = httpx.get(server.url + "/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/remote-aes/{aet}" in document["paths"]


def test_cors_preflight_and_headers(server: RunningServer) -> None:
    preflight = httpx.options(
        server.dicomweb + "/studies",
        headers={"origin": "https://viewer.example", "access-control-request-method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://viewer.example"
    other = httpx.get(server.dicomweb + "/studies", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_capabilities_and_unknown_routes(server: RunningServer) -> None:
    assert "QIDO-RS" in httpx.get(server.dicomweb).json()["transactions"]
    assert httpx.get(server.dicomweb + "/nothing-here").status_code == 404
    assert httpx.put(server.dicomweb + "/studies").status_code == 405


def test_responses_carry_security_headers(server: RunningServer) -> None:
    for response in (
        httpx.get(f"{server.dicomweb}/studies"),
        httpx.get(f"{server.url}/api/stats"),
        httpx.get(f"{server.dicomweb}/studies/1.2.3/metadata"),  # an error answer too
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    (tmp_path / "limited").mkdir()
    limited = start_server(
        tmp_path / "limited" / "data", {"HOUNSFIELD_RATE_LIMIT_PER_MINUTE": "30"}
    )
    try:
        statuses = [httpx.get(f"{limited.dicomweb}/studies").status_code for _ in range(10)]
        assert statuses[:6] == [204] * 6  # a burst of a fifth of the minute's budget
        assert 429 in statuses
        refused = httpx.get(f"{limited.dicomweb}/studies")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert httpx.get(f"{limited.url}/api/health").status_code == 200  # never limited
    finally:
        stop_server(limited)
