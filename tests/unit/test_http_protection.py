"""Security headers and the per-principal rate limiter (frontends/http/protection.py)."""

from __future__ import annotations

import pytest

from hounsfield.frontends.http.core import HttpError, Response
from hounsfield.frontends.http.protection import HSTS, RateLimiter, security_headers


def test_security_headers_complete_but_never_override() -> None:
    plain = dict(security_headers(Response(200, b"{}", []), https=False))
    assert plain["x-content-type-options"] == "nosniff"
    assert plain["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert plain["cache-control"] == "no-store"
    assert HSTS[0] not in plain
    pixels = Response(200, b"", [("Cache-Control", "private, max-age=3600")])
    headers = dict(security_headers(pixels, https=True))
    assert "cache-control" not in headers  # the resource chose its own policy
    assert headers[HSTS[0]] == HSTS[1]


def test_token_buckets_limit_each_caller_and_refill() -> None:
    now = [1000.0]
    limiter = RateLimiter(60, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("alice")
    with pytest.raises(HttpError) as refused:
        limiter.check("alice")
    assert refused.value.status == 429
    assert dict(refused.value.headers or [])["retry-after"] == "1"
    limiter.check("bob")  # another caller has its own bucket
    now[0] += 1.0  # one token a second
    limiter.check("alice")
    with pytest.raises(HttpError):
        limiter.check("alice")
    now[0] += 60.0  # refilled, but never beyond the burst
    for _ in range(3):
        limiter.check("alice")
    with pytest.raises(HttpError):
        limiter.check("alice")
