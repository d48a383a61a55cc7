"""Query and path parameters of the admin API, parsed with precise 400 answers."""

from __future__ import annotations

from hounsfield.frontends.http.core import HttpError


def bounded_int(name: str, text: str, low: int, high: int) -> int:
    """`text` as an integer in [low, high]; 400 naming the parameter otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise HttpError(400, f"{name!r} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise HttpError(400, f"{name!r} must be between {low} and {high}")
    return value
