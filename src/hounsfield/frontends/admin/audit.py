"""`GET /api/audit`: the audit trail for auditors, newest first (docs/security.md).

Filters: `since`, `until` (ISO 8601 date-times, UTC when no offset is given), `type` (an event
type: `instances-transferred`, `query`, `begin-transferring`, `instances-accessed`, `export`,
`security-alert`, `user-authentication`, `audit-log-used`), `user`, `patient` (Patient ID),
`study` (Study Instance UID), `partition`; paging with `limit` (default 100, at most 1000) and
`before` (the `seq` of the last record of the previous page). Each record carries its PS3.15
A.5 XML and its place in the hash chain. Reading the trail is itself audited (Audit Log Used).
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

from hounsfield.domain.audit import AuditRecord, EventKind, timestamp
from hounsfield.frontends.admin.params import bounded_int
from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.frontends.http.security import use_partition
from hounsfield.ports.audit import AuditFilter
from hounsfield.services.container import Services

_PARAMS = ("since", "until", "type", "user", "patient", "study", "partition", "before", "limit")


def _time(name: str, text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f"{name!r} must be an ISO 8601 date-time, got {text!r}") from None
    return timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def audit_filter(request: Request) -> AuditFilter:
    params: dict[str, str] = {}
    for key, value in request.query_items():
        if key not in _PARAMS:
            raise HttpError(400, f"unknown query parameter {key!r}")
        params[key] = value
    event_type = params.get("type")
    if event_type is not None:
        try:
            EventKind.from_slug(event_type)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
    return AuditFilter(
        since=_time("since", params["since"]) if "since" in params else None,
        until=_time("until", params["until"]) if "until" in params else None,
        event_type=event_type,
        user_id=params.get("user"),
        patient_id=params.get("patient"),
        study_uid=params.get("study"),
        partition=params.get("partition"),
        before_seq=bounded_int("before", params["before"], 1, 2**62)
        if "before" in params
        else None,
        limit=bounded_int("limit", params["limit"], 1, 1000) if "limit" in params else 100,
    )


def record_document(record: AuditRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "time": record.event_time,
        "type": record.event_type,
        "action": record.action,
        "outcome": record.outcome,
        "user": record.user_id,
        "address": record.address,
        "partition": record.partition,
        "patients": list(record.patient_ids),
        "studies": list(record.study_uids),
        "xml": record.xml,
        "prevHash": record.prev_hash,
        "hash": record.hash,
    }


def add_audit_routes(router: Router, services: Services) -> None:
    @router.route("/api/audit", "GET")
    async def audit_trail(request: Request) -> Response:
        if services.audit is None:
            raise HttpError(503, "the audit trail is off (audit_enabled = false)")
        where = audit_filter(request)
        principal = request.principal
        if principal is not None and not principal.all_partitions:
            # An auditor of some partitions reads their records only (docs/security.md).
            where = dataclasses.replace(where, partition=use_partition(request, where.partition))
        found = await asyncio.to_thread(services.audit.find, where)
        headers = []
        if len(found) == where.limit:
            headers.append(("x-next-before", str(found[-1].seq)))
        return json_response([record_document(r) for r in found], headers=headers)
