"""Cache URL options: Hounsfield's own query parameters are taken out of the URL, the rest is
left for the client library (like the bus and PostgreSQL index URLs)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def split_options(url: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The URL without the query parameters in `names`, and those parameters."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    keep: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in names:
            ours[key] = value
        else:
            keep.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(keep))), ours


def parse_ttl(raw: str | None) -> float | None:
    """A default TTL in seconds from a URL; absent or 0 means entries do not expire."""
    if raw is None or raw == "":
        return None
    try:
        ttl = float(raw)
    except ValueError:
        raise ValueError(f"cache ttl {raw!r} is not a number of seconds") from None
    if ttl < 0:
        raise ValueError(f"cache ttl must not be negative, got {raw}")
    return ttl or None


def check_ttl(ttl: float | None, default: float | None) -> float | None:
    """The TTL of one write: the caller's when given (it must be positive), else the default."""
    if ttl is None:
        return default
    if ttl <= 0:
        raise ValueError(f"a cache ttl must be positive, got {ttl}")
    return ttl
