"""The router and the request object of the thin ASGI layer (RFC 9110, RFC 3986)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, unquote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hounsfield.frontends.http.core import HttpError, Message, Request, Response, Router

PROPERTY = settings(max_examples=200, deadline=None)


def make_request(
    method: str = "GET",
    raw_path: bytes = b"/",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: list[bytes] | None = None,
) -> Request:
    """A Request from a minimal ASGI HTTP scope, as uvicorn builds it: "path" decoded, and
    "raw_path" exactly as received."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers or [],
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body or []) - 1}
        for i, chunk in enumerate(body or [b""])
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return Request(scope, receive)


def handler_named(name: str) -> Any:
    async def handler(request: Request) -> Response:
        return Response(200, name.encode())

    handler.__name__ = name
    return handler


@pytest.fixture
def router() -> Router:
    r = Router()
    r.add("/studies", ("GET",), handler_named("search"))
    r.add("/studies", ("POST",), handler_named("store"))
    r.add("/studies/{study}", ("GET",), handler_named("retrieve"))
    r.add("/studies/{study}", ("delete",), handler_named("delete"))
    r.add("/studies/{study}/series/{series}/metadata", ("GET",), handler_named("metadata"))
    r.add("/studies/{study}/bulkdata/{path:path}", ("GET",), handler_named("bulkdata"))
    r.add("/api/openapi.json", ("GET",), handler_named("openapi"))
    return r


def resolve(router: Router, method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    request = make_request(method, raw_path.encode("ascii"))
    handler, params = router.resolve(request.method, request.path)
    return handler.__name__, params


def http_error(router: Router, method: str, raw_path: str) -> HttpError:
    with pytest.raises(HttpError) as error:
        resolve(router, method, raw_path)
    return error.value


# Routing ------------------------------------------------------------------------------------


def test_static_routes_and_methods(router: Router) -> None:
    assert resolve(router, "GET", "/studies") == ("search", {})
    assert resolve(router, "POST", "/studies") == ("store", {})
    assert resolve(router, "GET", "/studies/") == ("search", {})  # a trailing slash is tolerated


def test_path_params(router: Router) -> None:
    assert resolve(router, "GET", "/studies/1.2.3") == ("retrieve", {"study": "1.2.3"})
    assert resolve(router, "DELETE", "/studies/1.2.3") == ("delete", {"study": "1.2.3"})
    assert resolve(router, "GET", "/studies/1.2/series/3.4/metadata") == (
        "metadata",
        {"study": "1.2", "series": "3.4"},
    )


def test_a_segment_param_does_not_span_slashes(router: Router) -> None:
    assert http_error(router, "GET", "/studies/1/2/series/3/metadata").status == 404
    assert http_error(router, "GET", "/studies//series/3/metadata").status == 404  # not empty


def test_path_param_takes_the_rest_with_slashes(router: Router) -> None:
    assert resolve(router, "GET", "/studies/1.2/bulkdata/00420011/2/7FE00010") == (
        "bulkdata",
        {"study": "1.2", "path": "00420011/2/7FE00010"},
    )
    assert http_error(router, "GET", "/studies/1.2/bulkdata/").status == 404


def test_params_are_percent_decoded_once_after_matching(router: Router) -> None:
    # An encoded "/" stays inside its segment; "%2541" is "%41", not "A" (decoded once).
    assert resolve(router, "GET", "/studies/a%2Fb") == ("retrieve", {"study": "a/b"})
    assert resolve(router, "GET", "/studies/%2541") == ("retrieve", {"study": "%41"})
    assert resolve(router, "GET", "/studies/M%C3%BCller%20X") == ("retrieve", {"study": "Müller X"})
    assert resolve(router, "GET", "/studies/1/bulkdata/a%20b/c%2Fd") == (
        "bulkdata",
        {"study": "1", "path": "a b/c/d"},
    )


def test_param_that_is_not_utf8_is_400(router: Router) -> None:
    assert http_error(router, "GET", "/studies/%FF").status == 400


@PROPERTY
@given(st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s))
def test_any_param_value_round_trips_through_percent_encoding(value: str) -> None:
    router = Router()
    router.add("/x/{value}/y", ("GET",), handler_named("h"))
    assert resolve(router, "GET", f"/x/{quote(value, safe='')}/y") == ("h", {"value": value})


def test_literal_template_characters_are_not_patterns(router: Router) -> None:
    assert resolve(router, "GET", "/api/openapi.json") == ("openapi", {})
    assert http_error(router, "GET", "/api/openapiXjson").status == 404


def test_a_trailing_newline_is_not_ignored(router: Router) -> None:
    assert http_error(router, "GET", "/studies%0A").status == 404
    with pytest.raises(HttpError) as error:
        router.resolve("GET", "/studies\n")
    assert error.value.status == 404


def test_unknown_path_is_404(router: Router) -> None:
    error = http_error(router, "GET", "/nothing/here")
    assert error.status == 404
    assert error.headers == []


def test_wrong_method_is_405_with_allow(router: Router) -> None:
    error = http_error(router, "PUT", "/studies")
    assert error.status == 405
    assert dict(error.headers)["allow"] == "GET, HEAD, POST"
    error = http_error(router, "POST", "/studies/1.2.3")
    assert error.status == 405
    assert dict(error.headers)["allow"] == "DELETE, GET, HEAD"


def test_allow_without_get_has_no_head() -> None:
    router = Router()
    router.add("/upload", ("POST",), handler_named("upload"))
    error = http_error(router, "GET", "/upload")
    assert (error.status, dict(error.headers)["allow"]) == (405, "POST")


def test_head_falls_back_to_get(router: Router) -> None:
    assert resolve(router, "HEAD", "/studies/1.2.3") == ("retrieve", {"study": "1.2.3"})
    explicit = Router()
    explicit.add("/r", ("GET",), handler_named("get"))
    explicit.add("/r", ("HEAD",), handler_named("head"))
    assert resolve(explicit, "HEAD", "/r") == ("head", {})


def test_a_later_route_with_the_method_wins_over_405() -> None:
    router = Router()
    router.add("/a/{x}", ("GET",), handler_named("specific"))
    router.add("/a/{rest:path}", ("POST",), handler_named("general"))
    assert resolve(router, "POST", "/a/1") == ("general", {"rest": "1"})
    assert resolve(router, "GET", "/a/1") == ("specific", {"x": "1"})
    error = http_error(router, "PUT", "/a/1")
    assert dict(error.headers)["allow"] == "GET, HEAD, POST"


def test_route_decorator_registers_and_returns_the_handler() -> None:
    router = Router()
    original = handler_named("h")
    assert router.route("/r/{id}", "get", "put")(original) is original
    assert router.resolve("PUT", "/r/7") == (original, {"id": "7"})


async def disconnected() -> Message:
    return {"type": "http.disconnect"}


def test_request_without_raw_path_routes_on_path() -> None:
    # raw_path is optional in ASGI; the decoded path is the fallback.
    request = Request({"type": "http", "method": "GET", "path": "/studies/1"}, disconnected)
    assert request.path == "/studies/1"
    assert request.query_items() == []


# Request: query strings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "items"),
    [
        (b"", []),
        (b"a=1&b=2&a=3", [("a", "1"), ("b", "2"), ("a", "3")]),
        (b"PatientName=Doe%5EJohn", [("PatientName", "Doe^John")]),
        (b"PatientName=doe+j*", [("PatientName", "doe j*")]),
        (b"q=a%2Bb", [("q", "a+b")]),
        (b"q=%E5%B1%B1%E7%94%B0", [("q", "山田")]),
        (b"na%6De=v", [("name", "v")]),
        (b"flag&x=", [("flag", ""), ("x", "")]),
        (b"eq=a=b", [("eq", "a=b")]),
        (b"&&a=1&", [("a", "1")]),
        (b"p=%zz", [("p", "%zz")]),  # not an escape: kept as is
        ("p=Müller".encode(), [("p", "Müller")]),  # raw UTF-8 as some clients send it
    ],
)
def test_query_items(query: bytes, items: list[tuple[str, str]]) -> None:
    assert make_request(query=query).query_items() == items


@pytest.mark.parametrize("query", [b"p=%FF", b"p=%C3", b"%FF=1", b"p=\xff"])
def test_query_that_is_not_utf8_is_400(query: bytes) -> None:
    with pytest.raises(HttpError) as error:
        make_request(query=query).query_items()
    assert error.value.status == 400


@PROPERTY
@given(st.lists(st.tuples(st.text(min_size=1), st.text()), max_size=5))
def test_query_items_invert_form_encoding(items: list[tuple[str, str]]) -> None:
    assert make_request(query=urlencode(items).encode()).query_items() == items


# Request: headers, body, base URL -------------------------------------------------------------


def test_headers_are_lowercased_and_repeats_joined() -> None:
    request = make_request(
        headers=[(b"Accept", b"application/dicom"), (b"X-A", b"1"), (b"accept", b"*/*")]
    )
    assert request.headers == {"accept": "application/dicom, */*", "x-a": "1"}


def test_body_is_read_in_chunks_and_limited() -> None:
    assert asyncio.run(make_request(body=[b"ab", b"", b"cd"]).body()) == b"abcd"
    with pytest.raises(HttpError) as error:
        asyncio.run(make_request(body=[b"abc", b"def"]).body(limit=5))
    assert error.value.status == 413


def test_body_can_be_read_once() -> None:
    request = make_request(body=[b"x"])
    assert asyncio.run(request.body()) == b"x"
    with pytest.raises(RuntimeError):
        asyncio.run(request.body())


def test_disconnect_before_the_end_of_the_body_is_400() -> None:
    request = Request({"type": "http", "method": "POST", "path": "/"}, disconnected)
    with pytest.raises(HttpError) as error:
        asyncio.run(request.body())
    assert error.value.status == 400


def test_base_url() -> None:
    request = make_request(headers=[(b"host", b"pacs.example:8080")])
    assert request.base_url() == "http://pacs.example:8080"
    forwarded = make_request(
        headers=[
            (b"host", b"10.0.0.5"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"pacs.example"),
        ]
    )
    assert forwarded.base_url() == "https://pacs.example"
