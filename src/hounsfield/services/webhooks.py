"""Webhooks: a bus consumer that POSTs each event to the configured URLs, signed and retried.

The body is the CloudEvent (structured mode, `application/cloudevents+json`, docs/events.md).
Signatures follow the Standard Webhooks scheme (https://www.standardwebhooks.com): headers
`webhook-id` (the CloudEvents id), `webhook-timestamp` (Unix seconds) and `webhook-signature`
= `v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), where the key is the secret's
UTF-8 bytes, or its base64 decoding when it starts with `whsec_`. The timestamp lets receivers
refuse replays; the id lets them drop the duplicates at-least-once delivery brings.

Failures (connection errors, timeouts, 408, 429, 5xx) are retried with exponential back-off
(1, 2, 4... seconds, capped at 60) up to `max_attempts`; other 4xx answers are permanent. An
event that still fails is logged and dropped, so one dead receiver cannot stall the others
forever; its events stay readable in the change feed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence

from hounsfield.ports.index import Event
from hounsfield.services.cloudevents import encode, event_id

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
#: post(url, body, headers, timeout) -> HTTP status; raises OSError on network failure.
Poster = Callable[[str, bytes, dict[str, str], float], int]


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class WebhookSender:
    def __init__(
        self,
        urls: Sequence[str],
        secret: str,
        source: str,
        post: Poster,
        *,
        max_attempts: int = 8,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.urls = list(urls)
        self.key = signing_key(secret) if secret else b""
        self.source = source
        self.post = post
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock

    def headers(self, event: Event, body: bytes) -> dict[str, str]:
        timestamp = int(self.clock())
        headers = {
            "content-type": CONTENT_TYPE,
            "webhook-id": event_id(event),
            "webhook-timestamp": str(timestamp),
        }
        if self.key:
            headers["webhook-signature"] = sign(self.key, event_id(event), timestamp, body)
        return headers

    def deliver(self, url: str, event: Event) -> bool:
        """POST one event to one URL with retries; True when the receiver accepted it."""
        body = encode(event, self.source)
        delay = 1.0
        for attempt in range(1, self.max_attempts + 1):
            try:
                status = self.post(url, body, self.headers(event, body), self.timeout)
            except OSError as exc:
                status, reason = 0, str(exc)
            else:
                reason = f"HTTP {status}"
                if 200 <= status < 300:
                    return True
                if not _retryable(status):
                    break
            if attempt < self.max_attempts:
                log.info("webhook %s: %s, retry %d in %.0f s", url, reason, attempt, delay)
                self.sleep(delay)
                delay = min(delay * 2, 60.0)
        log.error("webhook %s: event %s dropped after %s", url, event_id(event), reason)
        return False

    def __call__(self, event: Event) -> None:
        """The consumer handler (services.events.consume)."""
        for url in self.urls:
            self.deliver(url, event)
