"""Admin API for one patient's data (GDPR erasure, HIPAA/GDPR access): `POST /api/patients/erase`.

The patient is named in the JSON body, never in the URL: URLs end up in access logs, proxies
and browser histories, and a Patient ID is PHI. Body: `{"patientId": ..., "issuerOfPatientId":
..., "partition": ...}`; the answer lists the erased studies' UIDs and counts. 404 when the
partition holds no study of the patient; 503 when the cache cannot be reached (nothing is
erased then, so the request can simply be repeated).
"""

from __future__ import annotations

import asyncio

from hounsfield.domain.errors import NotFoundError
from hounsfield.frontends.admin.params import json_fields
from hounsfield.frontends.http.core import HttpError, Request, Response, Router, json_response
from hounsfield.frontends.http.security import use_partition
from hounsfield.ports.cache import CacheUnavailable
from hounsfield.services.container import Services


def _body(request: Request, raw: bytes) -> tuple[str, str, str | None]:
    data = json_fields(raw, {"patientId", "issuerOfPatientId", "partition"})
    patient_id, issuer = data.get("patientId"), data.get("issuerOfPatientId")
    partition = data.get("partition")
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise HttpError(400, "'patientId' must be the patient's exact Patient ID")
    if any(c in patient_id for c in "*?\\"):
        raise HttpError(400, "'patientId' must not hold wildcards or several values")
    if issuer is not None and not isinstance(issuer, str):
        raise HttpError(400, "'issuerOfPatientId' must be a string")
    if partition is not None and not isinstance(partition, str):
        raise HttpError(400, "'partition' must be a partition name")
    # The principal's own partitions only (another one is answered 404, as if absent).
    return use_partition(request, partition), patient_id, issuer or None


def add_patient_routes(router: Router, services: Services) -> None:
    @router.route("/api/patients/erase", "POST")
    async def erase(request: Request) -> Response:
        if services.patients is None:
            raise HttpError(503, "patient erasure is not configured")
        partition, patient_id, issuer = _body(request, await request.body(1 << 16))
        try:
            report = await asyncio.to_thread(services.patients.erase, partition, patient_id, issuer)
        except NotFoundError:
            raise HttpError(404, "no study of this patient in the partition") from None
        except CacheUnavailable:
            raise HttpError(503, "the cache is unreachable: nothing was erased, retry") from None
        return json_response(
            {
                "partition": partition,
                "studies": report.studies,
                "instances": report.instances,
                "cancelledJobs": report.cancelled_jobs,
                "cachedImages": report.cached_images,
            }
        )
