"""Webhooks: Standard-Webhooks HMAC signatures, retries with exponential back-off, permanent
4xx failures, through the real HTTP poster to a local receiver; and end to end, a running
server POSTs a signed CloudEvent for a STOW."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from hounsfield.adapters import webhook_http
from hounsfield.ports.index import Event
from hounsfield.services.webhooks import WebhookSender, sign, signing_key
from tests.builders import make_instance, multipart, uid
from tests.conftest import start_server, stop_server

SECRET = "s3cret-key"


class Receiver:
    """A local HTTP endpoint answering with the queued statuses, then 204."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> None:
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60


EVENT = Event(
    "hounsfield.instance.stored",
    "default",
    {"studyInstanceUID": "1.2", "seriesInstanceUID": "1.2.3", "sopInstanceUID": "1.2.3.4"},
    seq=5,
    time=datetime(2026, 11, 25, tzinfo=UTC),
)


def test_signed_cloudevent_is_retried_with_backoff_until_accepted(receiver: Receiver) -> None:
    receiver.statuses = [503, 500, 429]
    sleeps: list[float] = []
    sender = WebhookSender(
        [receiver.url], SECRET, "urn:test", webhook_http.post, sleep=sleeps.append
    )
    assert sender.deliver(receiver.url, EVENT)
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(receiver.requests) == 4
    headers, body = receiver.requests[-1]
    assert headers["content-type"] == "application/cloudevents+json"
    assert headers["webhook-id"] == "default:5"
    verify(headers, body)
    doc = orjson.loads(body)
    assert doc["id"] == "default:5" and doc["type"] == "hounsfield.instance.stored"


def test_client_errors_are_permanent_and_attempts_are_bounded(receiver: Receiver) -> None:
    receiver.statuses = [400]
    sleeps: list[float] = []
    sender = WebhookSender(
        [receiver.url], SECRET, "urn:x", webhook_http.post, max_attempts=3, sleep=sleeps.append
    )
    assert not sender.deliver(receiver.url, EVENT)
    assert len(receiver.requests) == 1 and sleeps == []
    receiver.statuses = [500] * 5
    assert not sender.deliver(receiver.url, EVENT)
    assert len(receiver.requests) == 4 and sleeps == [1.0, 2.0]
    # A closed port is a network error: retried too.
    dead = "http://127.0.0.1:9/hook"
    assert not sender.deliver(dead, EVENT)
    assert sleeps == [1.0, 2.0, 1.0, 2.0]


def test_whsec_secrets_are_base64_keys() -> None:
    key = signing_key("whsec_" + base64.b64encode(b"raw-key").decode())
    assert key == b"raw-key"
    assert (
        sign(b"k", "id", 1, b"{}")
        == "v1," + base64.b64encode(hmac.new(b"k", b"id.1.{}", hashlib.sha256).digest()).decode()
    )


def test_running_server_posts_a_signed_event_for_each_stored_instance(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses = [500]  # the first attempt fails: the server retries
    server = start_server(
        tmp_path / "data",
        {"HOUNSFIELD_WEBHOOK_URLS": receiver.url, "HOUNSFIELD_WEBHOOK_SECRET": SECRET},
    )
    try:
        import httpx

        sop = uid()
        body, content_type = multipart([make_instance(sop_uid=sop)])
        response = httpx.post(
            f"{server.dicomweb}/studies", content=body, headers={"content-type": content_type}
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(receiver.requests) < 2:
            time.sleep(0.1)
    finally:
        stop_server(server)
    assert len(receiver.requests) == 2
    (first_headers, first), (headers, body) = receiver.requests
    assert first == body and first_headers["webhook-id"] == headers["webhook-id"]
    verify(headers, body)
    doc = orjson.loads(body)
    assert doc["data"]["sopInstanceUID"] == sop
    assert doc["source"] == "urn:hounsfield:HOUNSFIELD"
