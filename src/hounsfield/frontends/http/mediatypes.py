"""Media types and Accept negotiation (RFC 9110 12.5.1, PS3.18 8.7.8)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hounsfield.frontends.http.core import HttpError

_TCHARS = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_MEDIA_TYPE = re.compile(f"{_TCHARS}/{_TCHARS}")  # type "/" subtype (RFC 9110 8.3.1)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One media range of an Accept header, or a Content-Type."""

    type: str  # "multipart/related", "application/dicom", "*/*"...
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        if self.type == "*/*":
            return True
        main, _, sub = self.type.partition("/")
        other_main, _, other_sub = media_type.partition("/")
        return main == other_main and (sub == "*" or sub == other_sub)


def _split(value: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_media_type(value: str) -> MediaRange:
    pieces = _split(value, ";")
    media = pieces[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(media):
        raise HttpError(400, f"malformed media type {value!r}")
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        name, eq, raw = piece.strip().partition("=")
        if not eq:
            continue
        name = name.strip().lower()
        text = raw.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        if name == "q":
            try:
                q = float(text)
            except ValueError as exc:
                raise HttpError(400, f"malformed quality value in {value!r}") from exc
            if not 0.0 <= q <= 1.0:
                raise HttpError(400, f"quality value out of range in {value!r}")
        else:
            params[name] = (
                text
                if name in ("boundary", "start")
                else text.lower()
                if name in ("type",)
                else text
            )
    return MediaRange(media, params, q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Media ranges of an Accept header in order of preference; absent means */*."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges = [_accept_element(p) for p in _split(header, ",") if p.strip()]
    # Stable sort: a higher q first, then the client's order (PS3.18 8.7.8).
    return sorted((r for r in ranges if r.q > 0), key=lambda r: -r.q)


def _accept_element(element: str) -> MediaRange:
    # Java's HttpURLConnection sends a bare "*" by default ("..., *; q=.2, */*; q=.2").
    media, sep, rest = element.partition(";")
    if media.strip() == "*":
        element = "*/*" + sep + rest
    return parse_media_type(element)
