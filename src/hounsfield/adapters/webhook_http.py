"""The outbound HTTP POST of webhooks, on the standard library (no client dependency): the
consumer thread blocks on it, which is what a synchronous bus consumer wants."""

from __future__ import annotations

import urllib.error
import urllib.request


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST and return the status; network failures raise OSError (URLError is one)."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"webhook URL {url!r} is not http(s)")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
