"""`POST /api/deidentify`: copy a study de-identified (PS3.15 Annex E) into another partition,
as a durable job of kind `deidentify` (services/deidentify.py).

Body: `{"study": UID, "targetPartition": name, "partition": name?, "options": [...]?,
"allowBurnedIn": bool?}`; options are those of `domain.deidentify.OPTIONS` (`retain-uids`,
`retain-full-dates`, `retain-modified-dates`, `retain-device-identity`,
`retain-institution-identity`, `retain-patient-characteristics`, `clean-descriptors`).
Answers 202 `{"job": id}`; follow it at `/api/jobs/{id}`. 404 when the study is not stored.
"""

from __future__ import annotations

import asyncio

from hounsfield.domain.deidentify import DeidentificationError, Options
from hounsfield.domain.identifiers import is_valid_partition, is_valid_uid
from hounsfield.domain.model import Level
from hounsfield.frontends.admin.params import json_fields
from hounsfield.frontends.http.audit import actor_of
from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.frontends.http.security import use_partition
from hounsfield.services.container import Services

_FIELDS = {"study", "partition", "targetPartition", "options", "allowBurnedIn"}


def add_deidentify_routes(router: Router, services: Services) -> None:
    @router.route("/api/deidentify", "POST")
    async def deidentify(request: Request) -> Response:
        if services.deidentify is None:
            raise HttpError(503, "de-identification is not configured")
        data = json_fields(await request.body(1 << 16), _FIELDS)
        study, target = data.get("study"), data.get("targetPartition")
        if not isinstance(study, str) or not is_valid_uid(study):
            raise HttpError(400, "'study' must be a Study Instance UID")
        if not isinstance(target, str) or not is_valid_partition(target):
            raise HttpError(400, "'targetPartition' must be a valid partition name")
        names = data.get("options", [])
        allow = data.get("allowBurnedIn", False)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HttpError(400, "'options' must be a list of option names")
        if not isinstance(allow, bool):
            raise HttpError(400, "'allowBurnedIn' must be a boolean")
        partition = use_partition(request, data.get("partition"))
        try:
            options = Options.of(names, allow_burned_in=allow)
        except DeidentificationError as exc:
            raise HttpError(400, str(exc)) from None
        exists = await asyncio.to_thread(
            services.deidentify.index.level_exists, partition, Level.STUDY, study
        )
        if not exists:
            raise HttpError(404, f"no study {study} in partition {partition!r}")
        try:
            job_id = await asyncio.to_thread(
                services.deidentify.queue,
                partition,
                study,
                target,
                options,
                requested_by=actor_of(request).user_id,
            )
        except DeidentificationError as exc:
            raise HttpError(400, str(exc)) from None
        return json_response({"job": job_id}, 202)
