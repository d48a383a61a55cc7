"""Query and path parameters of the admin API, parsed with precise 400 answers."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

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


def json_fields(body: bytes, allowed: Collection[str] | None) -> dict[str, Any]:
    """The request body as a JSON object with no field outside `allowed` (None: any, the
    caller validates them); 400 otherwise."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise HttpError(400, "body must be a JSON object")
    unknown = [] if allowed is None else sorted(set(data) - set(allowed))
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)}")
    return data
