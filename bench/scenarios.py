"""The measured scenarios. Each runs against one archive's DICOMweb root, is bounded in time,
and checks the answers it times (a fast wrong answer is a problem, not a result)."""

from __future__ import annotations

import calendar
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bench.data import STOW_CONTENT_TYPE, TinyArchive

# Client-side timeouts: generous, since a slow archive is a result, not an error.
TIMEOUT = httpx.Timeout(600.0, connect=10.0)
STUDY_LIMIT = 100  # viewers page study lists; the same limit for both archives


def client() -> httpx.Client:
    """One keep-alive connection, as a viewer or a modality gateway would use."""
    return httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_connections=1))


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "max_ms": max(ms),
    }


@dataclass
class Problems:
    """Wrong or failed answers seen while measuring, per archive."""

    items: list[str] = field(default_factory=list)

    def add(self, archive: str, message: str) -> None:
        line = f"{archive}: {message}"
        if len(self.items) < 200 and line not in self.items:
            self.items.append(line)


def _stow_failures(response: httpx.Response) -> int:
    """Number of failed parts in a STOW-RS response (Failed SOP Sequence, 0008,1198)."""
    try:
        body = response.json()
    except ValueError:
        return -1
    failed = body.get("00081198", {}).get("Value", []) if isinstance(body, dict) else []
    return len(failed)


# --- STOW-RS ingest -------------------------------------------------------------------------


@dataclass
class StowResult:
    instances: int
    requests: int
    seconds: float
    request_latency: dict[str, float]
    complete: bool

    @property
    def rate(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0


def stow_bodies(
    archive: str,
    dicomweb: str,
    bodies: Iterable[tuple[bytes, int]],
    problems: Problems,
    time_limit: float,
    *,
    warmup: Iterable[tuple[bytes, int]] = (),
) -> StowResult:
    """POST each (multipart body, instance count) in order over one keep-alive connection."""
    headers = {"Content-Type": STOW_CONTENT_TYPE, "Accept": "application/dicom+json"}
    url = f"{dicomweb}/studies"
    with client() as http:
        for body, _ in warmup:
            response = http.post(url, content=body, headers=headers)
            if response.status_code != 200:
                problems.add(archive, f"STOW warm-up answered {response.status_code}")
        stored = 0
        latencies: list[float] = []
        complete = True
        start = time.perf_counter()
        for body, count in bodies:
            if time.perf_counter() - start > time_limit:
                complete = False
                break
            t0 = time.perf_counter()
            response = http.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            failed = _stow_failures(response) if response.status_code in (200, 202, 409) else 0
            if response.status_code != 200 or failed:
                problems.add(
                    archive,
                    f"STOW of {count} instances answered {response.status_code}"
                    f" with {failed} failed parts: {response.text[:200]!r}",
                )
            stored += count - max(failed, 0) if response.status_code in (200, 202) else 0
        seconds = time.perf_counter() - start
    return StowResult(stored, len(latencies), seconds, latency_summary(latencies), complete)


# --- QIDO-RS latency ------------------------------------------------------------------------


@dataclass
class Query:
    """One request and the number of results a correct archive returns."""

    path: str
    expected: int


@dataclass
class QueryShape:
    key: str
    label: str
    queries: list[Query]


def _url(path: str, params: dict[str, str]) -> str:
    # Keep `*`, `^`, `,` and `-` literal, as viewers do; Orthanc's DICOMweb plugin 1.7 does not
    # match PatientName=DOE%2A.
    if not params:
        return path
    return path + "?" + "&".join(f"{k}={quote(v, safe='*^,-.')}" for k, v in params.items())


def _month_end(month: str) -> str:
    return f"{calendar.monthrange(int(month[:4]), int(month[4:6]))[1]:02d}"


def query_shapes(archive: TinyArchive, per_shape: int, seed: int = 7) -> list[QueryShape]:
    """The typical viewer queries, with values that exist in the generated data."""
    rng = random.Random(seed)
    studies = archive.studies
    spec = archive.spec
    sample = [rng.choice(studies) for _ in range(per_shape)]
    limit = {"limit": str(STUDY_LIMIT)}

    def capped(n: int) -> int:
        return min(n, STUDY_LIMIT)

    by_patient: dict[str, int] = {}
    for s in studies:
        by_patient[s.patient_id] = by_patient.get(s.patient_id, 0) + 1
    doe = sum(1 for s in studies if s.patient_name.startswith("DOE"))

    months = sorted({s.study_date[:6] for s in studies})
    month_sample = [rng.choice(months) for _ in range(per_shape)]

    def in_month(month: str) -> int:
        return sum(1 for s in studies if s.study_date[:6] == month)

    modalities = ["MR", "US", "DX", "CR"]

    def with_modality(m: str) -> int:
        return sum(1 for s in studies if m in s.modalities)

    modality_counts = {m: with_modality(m) for m in modalities}

    return [
        QueryShape(
            "patient_id",
            "studies by PatientID",
            [
                Query(
                    _url("/studies", {"PatientID": s.patient_id, **limit}),
                    capped(by_patient[s.patient_id]),
                )
                for s in sample
            ],
        ),
        QueryShape(
            "patient_name_prefix",
            "studies by PatientName prefix (DOE*)",
            [Query(_url("/studies", {"PatientName": "DOE*", **limit}), capped(doe))] * per_shape,
        ),
        QueryShape(
            "study_date_range",
            "studies by StudyDate range (one month)",
            [
                Query(
                    _url("/studies", {"StudyDate": f"{m}01-{m}{_month_end(m)}", **limit}),
                    capped(in_month(m)),
                )
                for m in month_sample
            ],
        ),
        QueryShape(
            "modalities_in_study",
            "studies by ModalitiesInStudy",
            [
                Query(
                    _url("/studies", {"ModalitiesInStudy": m, **limit}),
                    capped(modality_counts[m]),
                )
                for m in (modalities[i % len(modalities)] for i in range(per_shape))
            ],
        ),
        QueryShape(
            "study_uid",
            "studies by StudyInstanceUID",
            [Query(_url("/studies", {"StudyInstanceUID": s.study_uid}), 1) for s in sample],
        ),
        QueryShape(
            "series_of_study",
            "series of a study",
            [Query(f"/studies/{s.study_uid}/series", spec.series_per_study) for s in sample],
        ),
        QueryShape(
            "instances_of_series",
            "instances of a series",
            [
                Query(
                    f"/studies/{s.study_uid}/series/{rng.choice(s.series_uids)}/instances",
                    spec.instances_per_series,
                )
                for s in sample
            ],
        ),
    ]


def _count(response: httpx.Response) -> int:
    if response.status_code == 204 or not response.content.strip():
        return 0
    body: Any = response.json()
    return len(body) if isinstance(body, list) else -1


def run_queries(
    archive: str,
    dicomweb: str,
    shapes: list[QueryShape],
    problems: Problems,
    time_limit: float,
    warmup: int = 3,
) -> dict[str, dict[str, float]]:
    """Latency of each query shape; each shape gets at most `time_limit` seconds."""
    out: dict[str, dict[str, float]] = {}
    headers = {"Accept": "application/dicom+json"}
    with client() as http:
        for shape in shapes:
            for query in shape.queries[:warmup]:
                http.get(dicomweb + query.path, headers=headers)
            seconds: list[float] = []
            wrong = 0
            start = time.perf_counter()
            for query in shape.queries:
                if time.perf_counter() - start > time_limit:
                    break
                t0 = time.perf_counter()
                response = http.get(dicomweb + query.path, headers=headers)
                _ = response.content
                seconds.append(time.perf_counter() - t0)
                if response.status_code not in (200, 204):
                    wrong += 1
                    problems.add(
                        archive,
                        f"QIDO {query.path} answered {response.status_code}:"
                        f" {response.text[:160]!r}",
                    )
                elif (got := _count(response)) != query.expected:
                    wrong += 1
                    problems.add(
                        archive,
                        f"QIDO {query.path} returned {got} results, expected {query.expected}",
                    )
            summary = latency_summary(seconds)
            summary["wrong_answers"] = wrong
            out[shape.key] = summary
    return out


# --- WADO-RS series metadata ----------------------------------------------------------------


def series_metadata(
    archive: str,
    dicomweb: str,
    study_uid: str,
    series_uid: str,
    expected: int,
    problems: Problems,
    repeats: int,
    time_limit: float,
    encoding: str = "identity",
) -> dict[str, float]:
    """Latency of GET …/series/{uid}/metadata; the first (cold) call is reported apart."""
    url = f"{dicomweb}/studies/{study_uid}/series/{series_uid}/metadata"
    headers = {"Accept": "application/dicom+json", "Accept-Encoding": encoding}
    seconds: list[float] = []
    first = 0.0
    size = 0
    with client() as http:
        start = time.perf_counter()
        for i in range(repeats + 1):
            if i > 1 and time.perf_counter() - start > time_limit:
                break
            t0 = time.perf_counter()
            response = http.get(url, headers=headers)
            raw = response.content
            elapsed = time.perf_counter() - t0
            if i == 0:
                first = elapsed
                _check_metadata(archive, response, expected, problems)
                size = len(raw)
            else:
                seconds.append(elapsed)
    summary = latency_summary(seconds)
    summary["first_ms"] = first * 1000
    summary["body_bytes"] = size
    return summary


def _check_metadata(
    archive: str, response: httpx.Response, expected: int, problems: Problems
) -> None:
    if response.status_code != 200:
        problems.add(archive, f"series metadata answered {response.status_code}")
        return
    items: Any = response.json()
    if not isinstance(items, list) or len(items) != expected:
        n = len(items) if isinstance(items, list) else "not a list"
        problems.add(archive, f"series metadata has {n} instances, expected {expected}")
        return
    for item in items:
        pixel = item.get("7FE00010", {})
        if "BulkDataURI" not in pixel and "InlineBinary" not in pixel:
            problems.add(archive, "series metadata: Pixel Data has no BulkDataURI")
            break
    for keyword, tag in (("Rows", "00280010"), ("SOPInstanceUID", "00080018")):
        if any(tag not in item for item in items):
            problems.add(archive, f"series metadata: {keyword} missing in some instances")


def in_threads(workers: list[Callable[[], None]]) -> float:
    """Run each worker in its own thread, all at once (blocking socket and database calls
    release the GIL); return the wall time from the first start to the last end. The first
    exception a worker raised is raised here, after every thread has ended."""
    errors: list[BaseException] = []

    def guarded(worker: Callable[[], None]) -> None:
        try:
            worker()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(w,)) for w in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0
