"""The wire form of outbox events: CloudEvents 1.0 in JSON (structured content mode).

CloudEvents (https://github.com/cloudevents/spec, v1.0.2) is what brokers, serverless triggers
and webhook receivers already understand, so every bus adapter and the webhook consumer send
the same document (schema in docs/events.md). The `sequence` extension (CloudEvents
"sequence" extension, a string) carries the outbox sequence number and `partition` the tenant,
so a consumer can rebuild the `Event` exactly and order or dedupe by `id`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from hounsfield.ports.index import Event

SPEC_VERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"


def event_id(event: Event) -> str:
    """Unique per archive and stable across re-publication: what consumers deduplicate by."""
    return f"{event.partition}:{event.seq}"


def default_source(ae_title: str) -> str:
    """The CloudEvents `source` of an archive: a URN naming it by AE title."""
    return "urn:hounsfield:" + quote(ae_title.strip(), safe="")


def subject(data: dict[str, Any]) -> str | None:
    """The DICOMweb-style path of the object the event is about (CloudEvents `subject`)."""
    path = ""
    for key, segment in (
        ("studyInstanceUID", "studies"),
        ("seriesInstanceUID", "series"),
        ("sopInstanceUID", "instances"),
    ):
        value = data.get(key)
        if not isinstance(value, str):
            break
        path += f"/{segment}/{value}"
    return path[1:] or None


def to_cloudevent(event: Event, source: str) -> dict[str, Any]:
    time = event.time or datetime.now(UTC)
    document: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id(event),
        "source": source,
        "type": event.type,
        "time": time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": DATA_CONTENT_TYPE,
        "partition": event.partition,
        "sequence": str(event.seq),
    }
    about = subject(event.data)
    if about is not None:
        document["subject"] = about
    document["data"] = event.data
    return document


def encode(event: Event, source: str) -> bytes:
    return orjson.dumps(to_cloudevent(event, source))


class MalformedEventError(ValueError):
    """A message on the bus that is not a CloudEvent this archive wrote."""


def decode(body: bytes) -> Event:
    try:
        doc = orjson.loads(body)
        if doc.get("specversion") != SPEC_VERSION:
            raise MalformedEventError(f"unsupported specversion {doc.get('specversion')!r}")
        return Event(
            type=str(doc["type"]),
            partition=str(doc["partition"]),
            data=dict(doc.get("data") or {}),
            seq=int(doc["sequence"]),
            time=datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, MalformedEventError):
            raise
        raise MalformedEventError(f"not a Hounsfield CloudEvent: {exc}") from exc
