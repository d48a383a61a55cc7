"""Authentication through the real server: OIDC bearer tokens from a local issuer (RS256 and
ES256), bad tokens, key rotation, API keys made and revoked with the CLI, and the refusal to
listen beyond loopback without authentication."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import free_port, hounsfield_cli, start_server, stop_server
from tests.e2e.authsupport import Secured
from tests.oidcsupport import new_key, unsigned_token

#: One request per kind of route, each needing credentials.
PROTECTED = [
    ("GET", "/dicom-web"),
    ("GET", "/dicom-web/studies"),
    ("GET", "/dicom-web/partitions/default/series"),
    ("GET", "/dicom-web/studies/1.2.3/metadata"),
    ("GET", "/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5/frames/1"),
    ("POST", "/dicom-web/studies"),
    ("DELETE", "/dicom-web/studies/1.2.3"),
    ("GET", "/dicom-web/changefeed"),
    ("GET", "/wado?requestType=WADO&studyUID=1.2.3&seriesUID=1.2.4&objectUID=1.2.5"),
    ("GET", "/api/remote-aes"),
    ("PUT", "/api/remote-aes/PEER"),
    ("GET", "/api/stats"),
    ("GET", "/api/jobs"),
    ("GET", "/api/worklist"),
    ("GET", "/api/openapi.json"),
]


def test_health_is_public_and_every_other_route_needs_credentials(secured: Secured) -> None:
    url = secured.server.url
    assert httpx.get(url + "/api/health").status_code == 200
    for method, path in PROTECTED:
        response = httpx.request(method, url + path, content=b"{}")
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer realm=")
        assert response.json()["status"] == 401
        bad_key = httpx.request(method, url + path, headers={"x-api-key": "hfk_nope"})
        assert bad_key.status_code == 401, (method, path)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_valid_tokens_are_accepted(secured: Secured, alg: str) -> None:
    token = secured.issuer.token(alg, roles=["viewer"], partitions=["default"])
    response = httpx.get(
        secured.server.dicomweb + "/studies", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 204)


def _forged(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["partitions"] = ["*"]
    body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


def test_bad_tokens_are_rejected(secured: Secured) -> None:
    issuer = secured.issuer
    now = int(time.time())
    stranger = new_key(issuer.keys["ES256"].kid, "ES256")
    bad = {
        "bad signature": issuer.token(key=stranger, roles=["admin"]),
        "forged claims": _forged(issuer.token()),
        "expired": issuer.token(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not yet valid": issuer.token(nbf=now + 3600),
        "wrong audience": issuer.token(aud="somebody-else"),
        "wrong issuer": issuer.token(iss="https://evil.example/realms/test"),
        "alg none": unsigned_token(issuer.claims(roles=["admin"], partitions=["*"])),
        "unknown kid": issuer.token(key=new_key("never-published", "RS256")),
        "kid with control and non-ASCII characters": issuer.token(
            key=new_key('ключ"\r\nSet-Cookie: x=1', "RS256")
        ),
    }
    for label, token in bad.items():
        response = httpx.get(
            secured.server.dicomweb + "/studies", headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, label
        challenge = response.headers["www-authenticate"]
        assert 'error="invalid_token"' in challenge, label
        assert challenge.isascii() and "\n" not in challenge, label
        assert "set-cookie" not in response.headers, label


def test_key_rotation_is_picked_up_and_retired_keys_fail(secured: Secured) -> None:
    issuer = secured.issuer
    url = secured.server.dicomweb + "/studies"
    before = issuer.token("RS256", roles=["viewer"])
    assert httpx.get(url, headers={"authorization": f"Bearer {before}"}).status_code in (200, 204)
    fetches = issuer.fetches
    issuer.rotate()
    after = issuer.token("RS256", roles=["viewer"])
    assert httpx.get(url, headers={"authorization": f"Bearer {after}"}).status_code in (200, 204)
    assert issuer.fetches == fetches + 1  # the unknown kid made the server refetch once
    assert httpx.get(url, headers={"authorization": f"Bearer {before}"}).status_code == 401


def test_api_keys_created_used_and_revoked_with_the_cli(secured: Secured) -> None:
    data_dir = secured.server.data_dir
    made = hounsfield_cli(
        data_dir, "keys", "create", "--name", "modality gateway", "--role", "uploader", "--json"
    )
    assert made.returncode == 0, made.stderr
    created = orjson.loads(made.stdout)
    key, key_id = created["key"], created["key_id"]
    assert key.startswith(f"hfk_{key_id}_") and created["partitions"] == ["default"]

    stored, uids = secured.store({"authorization": f"Bearer {key}"})
    assert stored.status_code == 200, stored.text
    found = httpx.get(
        secured.server.dicomweb + "/studies",
        params={"StudyInstanceUID": uids["study"]},
        headers={"x-api-key": key},
    )
    assert found.status_code == 200 and uids["study"] in found.text
    denied = httpx.delete(
        secured.server.dicomweb + f"/studies/{uids['study']}", headers={"x-api-key": key}
    )
    assert denied.status_code == 403  # uploader: no delete
    assert (
        httpx.get(secured.server.url + "/api/stats", headers={"x-api-key": key}).status_code == 403
    )

    listed = hounsfield_cli(data_dir, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    secret = key.removeprefix(f"hfk_{key_id}_")  # base64url: it may hold "_" itself
    assert len(secret) >= 40 and secret not in listed.stdout  # never shown again
    entry = next(k for k in orjson.loads(listed.stdout) if k["key_id"] == key_id)
    assert entry["revoked_at"] is None and entry["role"] == "uploader"

    revoked = hounsfield_cli(data_dir, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    after = httpx.get(secured.server.dicomweb + "/studies", headers={"x-api-key": key})
    assert after.status_code == 401
    assert "revoked" in after.json()["error"]
    again = hounsfield_cli(data_dir, "keys", "revoke", key_id)
    assert again.returncode != 0 and "no active API key" in again.stderr
    listed = orjson.loads(hounsfield_cli(data_dir, "keys", "list", "--json").stdout)
    assert next(k for k in listed if k["key_id"] == key_id)["revoked_at"] is not None


def test_a_partition_scoped_key_sees_only_its_partitions(secured: Secured) -> None:
    data_dir = secured.server.data_dir
    made = hounsfield_cli(
        data_dir, "keys", "create", "--name", "clinic b", "--role", "viewer",
        "--partition", "clinic-b", "--json",
    )  # fmt: skip
    key = orjson.loads(made.stdout)["key"]
    _, uids = secured.store(secured.root, partition="clinic-b")
    headers = {"authorization": f"Bearer {key}"}
    # The default route means the key's first partition.
    mine = httpx.get(
        secured.server.dicomweb + f"/studies/{uids['study']}/metadata", headers=headers
    )
    assert mine.status_code == 200
    other = httpx.get(secured.server.dicomweb + "/partitions/default/studies", headers=headers)
    assert other.status_code == 404


def test_serve_refuses_a_public_host_without_authentication(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(tmp_path / "data"),
        "HOUNSFIELD_HOST": "0.0.0.0",
        "HOUNSFIELD_HTTP_PORT": str(free_port()),
        "HOUNSFIELD_DIMSE_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "hounsfield.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    for setting in ("auth_oidc_issuer", "auth_api_keys", "allow_unauthenticated"):
        assert setting in result.stderr
    assert not (tmp_path / "data" / "index.db").exists()  # refused before opening anything


def test_every_http_worker_process_authenticates(tmp_path: Path) -> None:
    """With http_workers > 1 each worker builds its app from the settings (create_app)."""
    data_dir = tmp_path / "data"
    made = hounsfield_cli(data_dir, "keys", "create", "--name", "w", "--role", "viewer", "--json")
    key = orjson.loads(made.stdout)["key"]
    server = start_server(
        data_dir,
        {
            "HOUNSFIELD_HTTP_WORKERS": "2",
            "HOUNSFIELD_AUTH_API_KEYS": "true",
            "HOUNSFIELD_DIMSE_ENABLED": "false",
        },
    )
    try:
        url = server.dicomweb + "/studies"
        for _ in range(6):  # one connection each: the workers share the listening socket
            assert httpx.get(url).status_code == 401
            assert httpx.get(url, headers={"x-api-key": key}).status_code in (200, 204)
            assert httpx.post(url, headers={"x-api-key": key}).status_code == 403
    finally:
        stop_server(server)
