"""What DICOMweb handlers share: the services, the options, and URL building."""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.domain.identifiers import is_valid_uid
from hounsfield.frontends.http.core import HttpError, Request
from hounsfield.frontends.http.security import use_partition
from hounsfield.services.container import Services


@dataclass(frozen=True, slots=True)
class DicomWebOptions:
    default_partition: str = "default"
    max_request_bytes: int = 0
    stow_batch_size: int = 32


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    options: DicomWebOptions


def partition_of(request: Request, options: DicomWebOptions) -> str:
    """The partition named in the URL (/dicom-web/partitions/{name}/...) or the principal's
    default; 404 for a partition the principal may not use (frontends/http/security.py)."""
    return use_partition(request, request.params.get("partition"), options.default_partition)


def uid_param(request: Request, name: str) -> str:
    """A UID from the URL path, validated (PS3.5 9.1): a bad one is a 400, not a 404."""
    value = request.params[name]
    if not is_valid_uid(value):
        raise HttpError(400, f"{name} {value!r} is not a valid UID")
    return value


def service_root(request: Request, partition: str, options: DicomWebOptions) -> str:
    """Absolute URL of the DICOMweb service root the client used (for RetrieveURL etc.)."""
    base = request.base_url()
    if "partition" in request.params:
        return f"{base}/dicom-web/partitions/{partition}"
    return f"{base}/dicom-web"


def study_url(root: str, study: str) -> str:
    return f"{root}/studies/{study}"


def series_url(root: str, study: str, series: str) -> str:
    return f"{root}/studies/{study}/series/{series}"


def instance_url(root: str, study: str, series: str, sop: str) -> str:
    return f"{root}/studies/{study}/series/{series}/instances/{sop}"
