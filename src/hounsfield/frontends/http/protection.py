"""Response hardening and rate limits for the HTTP front ends (issue 6).

Security headers on every response (OWASP Secure Headers): responses are data, never pages to
frame or scripts to run, so `Content-Security-Policy: default-src 'none'; frame-ancestors
'none'`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`; HSTS when served
over TLS. Responses that did not choose a caching policy get `Cache-Control: no-store`: they
carry PHI, which shared caches and browser disks must not keep (pixel resources set their own
`private` policy with ETags).

Rate limits: a token bucket per principal (or per client address before authentication),
`rate_limit_per_minute` requests with bursts of a fifth of that; beyond it 429 with
Retry-After (RFC 6585 4). The buckets live in each process: with N replicas a principal gets
up to N times the limit, which bounds abuse without a shared store on the hot path.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from hounsfield.frontends.http.core import HttpError, Response

_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
)
HSTS = ("strict-transport-security", "max-age=31536000")
#: Buckets kept; the least recently used are dropped beyond it (their owners start full).
_BUCKETS = 100_000


def security_headers(response: Response, *, https: bool) -> list[tuple[str, str]]:
    """Headers to add to `response` (those it already sets are left as they are)."""
    present = {name.lower() for name, _ in response.headers}
    extra = [(name, value) for name, value in _ALWAYS if name not in present]
    if "cache-control" not in present:
        extra.append(("cache-control", "no-store"))
    if https:
        extra.append(HSTS)
    return extra


class RateLimiter:
    """Token buckets: `per_minute` tokens a minute, at most `burst` at once."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(per_minute // 5, 1))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, who: str) -> None:
        """Take one token for `who`, or raise 429 with the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self.rate)
                raise HttpError(
                    429, "too many requests: slow down", [("retry-after", str(max(wait, 1)))]
                )
            self._buckets[who] = (tokens - 1.0, now)
            while len(self._buckets) > _BUCKETS:
                self._buckets.popitem(last=False)
