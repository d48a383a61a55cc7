"""Admin API for durable jobs (`/api/jobs`) and forwarding rules (`/api/forward-rules`).

- `GET /api/jobs?state=&kind=&partition=&before=&limit=`: newest first; `before` is the id
  of the last job of the previous page (keyset paging). `GET /api/jobs/counts`.
- `GET /api/jobs/{id}`, `POST /api/jobs/{id}/retry` (dead or cancelled -> queued),
  `POST /api/jobs/{id}/cancel` (queued -> cancelled).
- `GET /api/forward-rules`, `GET|PUT|DELETE /api/forward-rules/{name}`.
- `POST /api/forward`: a one-off forward job, `{"destination": AET, "study": UID,
  "series": UID?, "sop": UID?, "partition": name?}`.
- `POST /api/fetch`: fetch a study from a remote AE into this archive (C-MOVE to ourselves),
  `{"source": AET, "study": UID, "partition": name?, "priority": n?}`.
"""

from __future__ import annotations

import asyncio

from hounsfield.frontends.admin.params import bounded_int, json_fields
from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.frontends.http.security import use_partition
from hounsfield.ports.jobs import JobFilter, JobState
from hounsfield.services.container import Services
from hounsfield.services.forwarding import ForwardingService, ForwardRule, InvalidRuleError
from hounsfield.services.jobs import JobService, job_document

MAX_PAGE = 1000


def _jobs(services: Services) -> JobService:
    if services.jobs is None:
        raise HttpError(503, "jobs are not configured")
    return services.jobs


def _forwarding(services: Services) -> ForwardingService:
    if services.forwarding is None:
        raise HttpError(503, "forwarding is not configured")
    return services.forwarding


def _filter(request: Request) -> JobFilter:
    params: dict[str, str] = {}
    for key, value in request.query_items():
        if key not in ("state", "kind", "partition", "before", "limit"):
            raise HttpError(400, f"unknown query parameter {key!r}")
        params[key] = value
    state = params.get("state")
    if state is not None and state not in {s.value for s in JobState}:
        raise HttpError(400, f"'state' must be one of {sorted(s.value for s in JobState)}")
    return JobFilter(
        state=None if state is None else JobState(state),
        kind=params.get("kind"),
        partition=params.get("partition"),
        before_id=bounded_int("before", params["before"], 1, 2**62) if "before" in params else None,
        limit=bounded_int("limit", params["limit"], 1, MAX_PAGE) if "limit" in params else 100,
    )


def _job_id(request: Request) -> int:
    return bounded_int("id", request.params["id"], 1, 2**62)


def add_job_routes(router: Router, services: Services) -> None:
    @router.route("/api/jobs", "GET")
    async def list_jobs(request: Request) -> Response:
        found = await asyncio.to_thread(_jobs(services).find, _filter(request))
        return json_response([job_document(job) for job in found])

    @router.route("/api/jobs/counts", "GET")
    async def job_counts(request: Request) -> Response:
        counts = await asyncio.to_thread(_jobs(services).counts)
        out: dict[str, dict[str, int]] = {}
        for (kind, state), n in sorted(counts.items()):
            out.setdefault(kind, {})[state.value] = n
        return json_response(out)

    @router.route("/api/jobs/{id}", "GET")
    async def get_job(request: Request) -> Response:
        job_id = _job_id(request)
        job = await asyncio.to_thread(_jobs(services).get, job_id)
        if job is None:
            raise HttpError(404, f"no job {job_id}")
        return json_response(job_document(job))

    async def _transition(request: Request, action: str) -> Response:
        job_id = _job_id(request)
        jobs = _jobs(services)
        done = await asyncio.to_thread(getattr(jobs, action), job_id)
        job = await asyncio.to_thread(jobs.get, job_id)
        if job is None:
            raise HttpError(404, f"no job {job_id}")
        if not done:
            raise HttpError(409, f"job {job_id} is {job.state.value}: cannot {action} it")
        return json_response(job_document(job))

    @router.route("/api/jobs/{id}/retry", "POST")
    async def retry_job(request: Request) -> Response:
        return await _transition(request, "retry")

    @router.route("/api/jobs/{id}/cancel", "POST")
    async def cancel_job(request: Request) -> Response:
        return await _transition(request, "cancel")

    @router.route("/api/forward", "POST")
    async def forward(request: Request) -> Response:
        data = json_fields(
            await request.body(1 << 16), {"destination", "study", "series", "sop", "partition"}
        )
        partition = data.get("partition")
        if partition is not None and not isinstance(partition, str):
            raise HttpError(400, "'partition' must be a valid partition name")
        partition = use_partition(request, partition)
        destination, study = data.get("destination"), data.get("study")
        if not isinstance(destination, str) or not destination:
            raise HttpError(400, "'destination' must be a remote AE title")
        if not isinstance(study, str) or not study:
            raise HttpError(400, "'study' must be a Study Instance UID")
        scope = {"study": study}
        for key in ("series", "sop"):
            if key in data:
                if not isinstance(data[key], str):
                    raise HttpError(400, f"{key!r} must be a UID")
                scope[key] = data[key]
        if "sop" in scope and "series" not in scope:
            raise HttpError(400, "'sop' needs 'series'")
        job_id = await asyncio.to_thread(
            _forwarding(services).forward, partition, destination, scope
        )
        return json_response({"job": job_id}, 202)

    @router.route("/api/fetch", "POST")
    async def fetch(request: Request) -> Response:
        data = json_fields(
            await request.body(1 << 16), {"source", "study", "partition", "priority"}
        )
        partition = data.get("partition")
        if partition is not None and not isinstance(partition, str):
            raise HttpError(400, "'partition' must be a valid partition name")
        partition = use_partition(request, partition)
        source, study = data.get("source"), data.get("study")
        priority = data.get("priority", 0)
        if not isinstance(source, str) or not source:
            raise HttpError(400, "'source' must be a remote AE title")
        if not isinstance(study, str) or not study:
            raise HttpError(400, "'study' must be a Study Instance UID")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise HttpError(400, "'priority' must be an integer")
        if services.fetching is None:
            raise HttpError(503, "fetching is not configured")
        job_id = await asyncio.to_thread(
            services.fetching.queue, partition, source, study, priority=priority
        )
        return json_response({"job": job_id}, 202)

    add_rule_routes(router, services)


def add_rule_routes(router: Router, services: Services) -> None:
    @router.route("/api/forward-rules", "GET")
    async def list_rules(request: Request) -> Response:
        rules = await asyncio.to_thread(_forwarding(services).rules)
        return json_response([rule.document() for rule in rules])

    @router.route("/api/forward-rules/{name}", "GET")
    async def get_rule(request: Request) -> Response:
        name = request.params["name"]
        rule = await asyncio.to_thread(_forwarding(services).get_rule, name)
        if rule is None:
            raise HttpError(404, f"no forwarding rule {name!r}")
        return json_response(rule.document())

    @router.route("/api/forward-rules/{name}", "PUT")
    async def put_rule(request: Request) -> Response:
        name = request.params["name"]
        data = json_fields(await request.body(1 << 16), None)
        if data.get("name", name) != name:
            raise HttpError(400, "'name' in the body differs from the URL")
        try:
            rule = ForwardRule.from_document(name, data)
        except InvalidRuleError as exc:
            raise HttpError(400, str(exc)) from None
        created = await asyncio.to_thread(_forwarding(services).put_rule, rule)
        return json_response(rule.document(), 201 if created else 200)

    @router.route("/api/forward-rules/{name}", "DELETE")
    async def delete_rule(request: Request) -> Response:
        name = request.params["name"]
        if not await asyncio.to_thread(_forwarding(services).delete_rule, name):
            raise HttpError(404, f"no forwarding rule {name!r}")
        return Response(204)
