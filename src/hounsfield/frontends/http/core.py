"""Requests, responses and the router of the thin ASGI layer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import orjson

from hounsfield.domain.security import Principal

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HttpError(Exception):
    """An error with an HTTP status; the body is a small JSON document naming the problem."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


class Request:
    __slots__ = (
        "_consumed",
        "_receive",
        "headers",
        "method",
        "params",
        "path",
        "principal",
        "query_string",
        "root",
        "scope",
    )

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self._consumed = False
        self.method: str = scope["method"]
        # Route on the path as sent: ASGI's "path" is already percent-decoded, and decoding it
        # again in the router would turn "%2541" into "A" and an encoded "/" into a separator.
        raw_path = scope.get("raw_path")
        self.path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
        self.root: str = scope.get("root_path", "")
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self.params: dict[str, str] = {}
        #: Who makes the request (frontends/http/security.py); None before authentication.
        self.principal: Principal | None = None

    def query_items(self) -> list[tuple[str, str]]:
        """Query parameters in order, percent-decoded (RFC 3986 2.1); '+' is a space as in
        application/x-www-form-urlencoded, which browsers use for query strings."""
        items: list[tuple[str, str]] = []
        for part in self.query_string.split(b"&"):
            if not part:
                continue
            # Decode bytes, not text, so that raw (unencoded) UTF-8 is read as UTF-8 too.
            name, _, value = (unquote_to_bytes(x.replace(b"+", b" ")) for x in part.partition(b"="))
            try:
                items.append((name.decode("utf-8"), value.decode("utf-8")))
            except UnicodeDecodeError as exc:
                label = name.decode("utf-8", errors="replace")
                raise HttpError(400, f"query parameter {label!r} is not UTF-8") from exc
        return items

    def base_url(self) -> str:
        """Scheme, host and root path as the client used them (honours X-Forwarded-*)."""
        scheme = self.headers.get("x-forwarded-proto") or self.scope.get("scheme", "http")
        host = self.headers.get("x-forwarded-host") or self.headers.get("host")
        if not host:
            server = self.scope.get("server") or ("localhost", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scheme}://{host}{self.root}"

    async def stream(self) -> AsyncIterator[bytes]:
        if self._consumed:
            raise RuntimeError("request body already consumed")
        self._consumed = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "client disconnected before the request body was complete")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self, limit: int = 16 << 20) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None

    async def __call__(
        self,
        send: Send,
        extra_headers: Iterable[tuple[str, str]] = (),
        *,
        head: bool = False,
    ) -> None:
        """Send the response; for a HEAD request (`head`) the same status and header fields
        as for GET, Content-Length included, and no content (RFC 9110 9.3.2)."""
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers]
        if self.stream is None or head:
            if self.stream is None:
                headers.append((b"content-length", str(len(self.body)).encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if head else self.body})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        async for chunk in self.stream:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def json_response(
    data: Any,
    status: int = 200,
    media_type: str = "application/json",
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    return Response(status, orjson.dumps(data), [("content-type", media_type), *headers])


def empty(status: int, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, b"", list(headers))


Handler = Callable[[Request], Awaitable[Response]]

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


def _segment(match: re.Match[str]) -> str:
    """{name} matches one path segment; {name:path} the rest of the path."""
    body = ".+" if match.group(2) else "[^/]+"
    return f"(?P<{match.group(1)}>{body})"


class Router:
    """Path templates with {name} segments; each matches one non-empty segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler], str]] = []
        self._index: dict[str, dict[str, Handler]] = {}

    def add(self, template: str, methods: Iterable[str], handler: Handler) -> None:
        if template not in self._index:
            pattern, start = "", 0
            for match in _PARAM.finditer(template):
                pattern += re.escape(template[start : match.start()]) + _segment(match)
                start = match.end()
            pattern += re.escape(template[start:]) + "/?"
            table: dict[str, Handler] = {}
            self._index[template] = table
            self._routes.append((re.compile(pattern), table, template))
        for method in methods:
            self._index[template][method.upper()] = handler

    def route(self, template: str, *methods: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(template, methods, handler)
            return handler

        return decorator

    def templates(self) -> dict[str, frozenset[str]]:
        """Every route template with its methods (for documentation checks)."""
        return {template: frozenset(table) for template, table in self._index.items()}

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        handler, params, _ = self.resolve_route(method, path)
        return handler, params

    def resolve_route(self, method: str, path: str) -> tuple[Handler, dict[str, str], str]:
        """The first route whose template and method match, with the template (which the
        authorization policy reads); 405 with Allow (RFC 9110 15.5.6) when only other methods
        match the path, 404 when nothing does."""
        allowed: set[str] = set()
        for pattern, table, template in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = table.get(method) or (table.get("GET") if method == "HEAD" else None)
            if handler is None:
                allowed.update(table)
                continue
            try:
                params = {k: unquote(v, errors="strict") for k, v in match.groupdict().items()}
            except UnicodeDecodeError as exc:
                raise HttpError(400, f"path {path!r} is not UTF-8") from exc
            return handler, params, template
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise HttpError(
                405, f"method {method} not allowed here", [("allow", ", ".join(sorted(allowed)))]
            )
        raise HttpError(404, f"no resource at {path}")
