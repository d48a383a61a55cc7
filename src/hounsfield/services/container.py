"""The set of services a front end is handed by the composition root (bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.services.admin import AdminService
from hounsfield.services.ingest import IngestService
from hounsfield.services.integrity import IntegrityService
from hounsfield.services.lifecycle import LifecycleService
from hounsfield.services.query import QueryService
from hounsfield.services.retrieve import RetrieveService
from hounsfield.services.staging import StagingArea


@dataclass(frozen=True, slots=True)
class Services:
    ingest: IngestService
    query: QueryService
    retrieve: RetrieveService
    lifecycle: LifecycleService
    admin: AdminService
    integrity: IntegrityService
    staging: StagingArea
