"""Media types and Accept negotiation (RFC 9110 8.3.1 and 12.5.1, PS3.18 8.7.8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hounsfield.frontends.http.core import HttpError
from hounsfield.frontends.http.mediatypes import MediaRange, parse_accept, parse_media_type

PROPERTY = settings(max_examples=200, deadline=None)


def types(ranges: list[MediaRange]) -> list[str]:
    return [r.type for r in ranges]


# parse_media_type ------------------------------------------------------------------------------


def test_stow_content_type_with_quoted_and_bare_params() -> None:
    media = parse_media_type('multipart/related; type="application/dicom"; transfer-syntax=*')
    assert media == MediaRange(
        "multipart/related", {"type": "application/dicom", "transfer-syntax": "*"}, 1.0
    )


def test_plain_media_type() -> None:
    assert parse_media_type("application/dicom") == MediaRange("application/dicom", {}, 1.0)


def test_case_rules() -> None:
    # Type, subtype and parameter names are case-insensitive; the "type" parameter is a media
    # type; boundary and start are case-sensitive (RFC 2046 5.1.1, RFC 2387 3.2).
    media = parse_media_type(
        'Multipart/Related; TYPE="Application/DICOM"; Boundary="AbC-123"; Start="<Root@X>"; '
        "Transfer-Syntax=1.2.840.10008.1.2.1"
    )
    assert media.type == "multipart/related"
    assert media.params == {
        "type": "application/dicom",
        "boundary": "AbC-123",
        "start": "<Root@X>",
        "transfer-syntax": "1.2.840.10008.1.2.1",
    }


def test_quoted_values_may_hold_separators() -> None:
    media = parse_media_type('multipart/related; boundary="a;b,c=d"; type="application/dicom"')
    assert media.params == {"boundary": "a;b,c=d", "type": "application/dicom"}


def test_whitespace_around_pieces() -> None:
    media = parse_media_type("  application/dicom+json ;  q = 0.5 ;charset=utf-8  ")
    assert (media.type, media.params, media.q) == (
        "application/dicom+json",
        {"charset": "utf-8"},
        0.5,
    )


@pytest.mark.parametrize(("text", "q"), [("0", 0.0), ("0.25", 0.25), (".2", 0.2), ("1", 1.0)])
def test_quality_values(text: str, q: float) -> None:
    media = parse_media_type(f"image/jpeg;q={text}")
    assert media.q == q
    assert "q" not in media.params


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "application",
        "application/",
        "/dicom",
        "a/b/c",
        "application dicom",
        "application/di com",
        "; type=application/dicom",
        "text/html; q=abc",
        "text/html; q=",
        "text/html; q=1.5",
        "text/html; q=-0.1",
        "text/html; q=nan",
        "text/html; q=inf",
    ],
)
def test_malformed_media_type_is_400(value: str) -> None:
    with pytest.raises(HttpError) as error:
        parse_media_type(value)
    assert error.value.status == 400


# parse_accept ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_accept_means_anything(header: str | None) -> None:
    assert parse_accept(header) == [MediaRange("*/*")]


def test_accept_orders_by_quality_and_excludes_q0() -> None:
    header = (
        "application/a;q=0.5, application/b, application/c;q=0.9, application/d, "
        "application/e;q=0, application/f;q=0.000"
    )
    assert types(parse_accept(header)) == [
        "application/b",
        "application/d",
        "application/c",
        "application/a",
    ]


def test_accept_keeps_client_order_for_equal_quality() -> None:
    header = "x/3;q=0.5, x/1;q=0.5, x/2;q=0.5, y/9;q=0.7, x/0;q=0.5"
    assert types(parse_accept(header)) == ["y/9", "x/3", "x/1", "x/2", "x/0"]


def test_accept_with_only_refused_types_is_empty() -> None:
    assert parse_accept("application/dicom;q=0, */*;q=0") == []


def test_accept_split_respects_quotes() -> None:
    ranges = parse_accept(
        'multipart/related; type="application/dicom, application/octet-stream"; q=0.9, '
        "application/dicom+json"
    )
    assert types(ranges) == ["application/dicom+json", "multipart/related"]
    assert ranges[1].params["type"] == "application/dicom, application/octet-stream"
    assert ranges[1].q == 0.9


def test_accept_ignores_empty_list_elements() -> None:
    # RFC 9110 5.6.1: recipients accept empty list elements.
    assert types(parse_accept(",application/dicom, ,  ,image/jpeg,")) == [
        "application/dicom",
        "image/jpeg",
    ]


def test_accept_of_java_http_url_connection() -> None:
    # The default Accept of Java's HttpURLConnection has a bare "*".
    ranges = parse_accept("text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2")
    assert types(ranges) == ["text/html", "image/gif", "image/jpeg", "*/*", "*/*"]
    assert [r.q for r in ranges] == [1.0, 1.0, 1.0, 0.2, 0.2]


@pytest.mark.parametrize(
    "header", ["application/dicom, garbage", "text/html;q=x", "*/*;q=2", "application/"]
)
def test_malformed_accept_is_400(header: str) -> None:
    with pytest.raises(HttpError) as error:
        parse_accept(header)
    assert error.value.status == 400


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["application/dicom", "image/*", "*/*", "text/plain"]),
            st.integers(min_value=0, max_value=1000),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_accept_order_is_a_stable_sort_by_quality(entries: list[tuple[str, int]]) -> None:
    header = ", ".join(f"{t};q={q / 1000:.3f};n={i}" for i, (t, q) in enumerate(entries))
    got = [int(r.params["n"]) for r in parse_accept(header)]
    expected = sorted(
        (i for i, (_, q) in enumerate(entries) if q > 0), key=lambda i: -entries[i][1]
    )
    assert got == expected


# MediaRange.matches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_range", "media_type", "expected"),
    [
        ("*/*", "application/dicom", True),
        ("*/*", "image/jp2", True),
        ("application/*", "application/dicom", True),
        ("application/*", "application/dicom+json", True),
        ("application/*", "image/jpeg", False),
        ("application/*", "applicationx/dicom", False),
        ("image/*", "image/jls", True),
        ("application/dicom", "application/dicom", True),
        ("application/dicom", "application/dicom+json", False),
        ("application/dicom", "application/dicomx", False),
        ("application/dicom", "application/octet-stream", False),
        ("application/dicom", "image/dicom", False),
        ("multipart/related", "multipart/related", True),
    ],
)
def test_matches(media_range: str, media_type: str, expected: bool) -> None:
    assert parse_media_type(media_range).matches(media_type) is expected


def test_matches_ignores_parameters_and_quality() -> None:
    media = parse_media_type('multipart/related; type="application/dicom"; q=0.1')
    assert media.matches("multipart/related")
    assert not media.matches("multipart/mixed")
