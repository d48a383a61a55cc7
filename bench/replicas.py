"""Replicas: throughput of 1 against 2 `hounsfield serve` processes sharing one archive.

    python -m bench.replicas [--url postgresql://postgres@127.0.0.1:5432/test] [--rounds 2]
    python -m bench.replicas --smoke          # tiny sizes: checks that every figure is produced

Each configuration gets a fresh PostgreSQL schema (`HOUNSFIELD_INDEX_URL=…?schema=…`) and a
fresh blob directory shared by its processes (`HOUNSFIELD_BLOB_URL=file://…`); each process has
its own data directory (staging only). Client threads spread their requests over the processes
in turn (request k goes to process k mod N), as a load balancer would, each thread with one
keep-alive connection per process. Measured, with the same data for both configurations:

- STOW-RS ingest of 512² CT (batches of `--ct-batch`) and of the tiny query set (batches of
  50): instances/s over all clients;
- QIDO-RS: the viewer query shapes of `bench.scenarios.query_shapes`, mixed, over the query
  set: requests/s and p50/p95, every answer's count checked (so an instance stored through one
  process must be found through the other);
- WADO-RS series metadata of a CT series: requests/s and p50/p95.

Configurations run in ABBA order (1, 2, 2, 1 for two rounds) so that a slow period of the
shared machine does not land on one of them only; the figure is the mean of a configuration's
rounds. Results go to bench/results/replicas-<UTC time>.json and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import data, machine, report
from bench import hounsfield as hounsfield_server
from bench.data import STOW_CONTENT_TYPE
from bench.scenarios import TIMEOUT, Query, _count, _stow_failures, in_threads, query_shapes
from bench.scenarios import latency_summary as summary
from bench.servers import RunningArchive

RESULTS = Path(__file__).parent / "results"
CT_KIND = 1  # each configuration has its own schema and blobs: the same UIDs in both


@dataclass
class Sizes:
    ct_studies: int = 8
    ct_slices: int = 100
    ct_batch: int = 25
    query_studies: int = 2000
    queries_per_shape: int = 100
    metadata_requests: int = 300
    clients: int = 4

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(1, 10, 5, 20, 5, 10, 2)


def say(message: str) -> None:
    print(f"[bench.replicas {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# A job runs one request on one process and says whether the answer was right.
Job = Callable[[httpx.Client, str], str | None]


def spread(bases: list[str], jobs: list[Job], clients: int, pids: list[int]) -> dict[str, Any]:
    """Run `jobs` from `clients` threads; job k goes to process k mod N. Returns the wall time,
    the rate, per-request latency, the servers' (`pids`) CPU time per request, and the wrong
    answers (their first messages)."""
    order = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    wrong: list[str] = []

    def work() -> None:
        with httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_connections=2)) as http:
            while True:
                with lock:
                    k = next(order)
                if k >= len(jobs):
                    return
                t0 = time.perf_counter()
                try:
                    problem = jobs[k](http, bases[k % len(bases)])
                except httpx.HTTPError as exc:
                    problem = repr(exc)
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        wrong.append(problem)

    cpu_before = machine.cpu_ms(pids)
    seconds = in_threads([work] * clients)
    cpu = machine.cpu_ms(pids) - cpu_before
    return {
        "server_cpu_ms_per_request": cpu / max(1, len(latencies)),
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "per_second": len(latencies) / seconds,
        "latency": summary(latencies),
        "wrong": len(wrong),
        "wrong_examples": wrong[:3],
    }


def stow_job(body: bytes) -> Job:
    def job(http: httpx.Client, base: str) -> str | None:
        response = http.post(
            f"{base}/dicom-web/studies",
            content=body,
            headers={"Content-Type": STOW_CONTENT_TYPE, "Accept": "application/dicom+json"},
        )
        failed = _stow_failures(response) if response.status_code == 200 else 0
        if response.status_code != 200 or failed:
            return f"STOW answered {response.status_code} with {failed} failed parts"
        return None

    return job


def qido_job(query: Query) -> Job:
    def job(http: httpx.Client, base: str) -> str | None:
        response = http.get(
            f"{base}/dicom-web{query.path}", headers={"Accept": "application/dicom+json"}
        )
        if response.status_code not in (200, 204):
            return f"QIDO {query.path} answered {response.status_code}"
        got = _count(response)
        return None if got == query.expected else f"QIDO {query.path}: {got}/{query.expected}"

    return job


def metadata_job(path: str, expected: int) -> Job:
    def job(http: httpx.Client, base: str) -> str | None:
        response = http.get(f"{base}/dicom-web{path}", headers={"Accept": "application/dicom+json"})
        if response.status_code != 200:
            return f"metadata answered {response.status_code}"
        items = response.json()
        return None if len(items) == expected else f"metadata: {len(items)}/{expected}"

    return job


class Workload:
    """The requests of one configuration, built once so that both get the very same bytes."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        spec = data.CtSeriesSpec(studies=sizes.ct_studies, slices=sizes.ct_slices, kind=CT_KIND)
        self.ct = [
            (data.multipart_body([i.data for i in batch]), len(batch))
            for batch in data.batched(data.ct_instances(spec), sizes.ct_batch)
        ]
        self.query_set = data.tiny_archive(data.TinyArchiveSpec(studies=sizes.query_studies))
        self.tiny = [
            (data.multipart_body([i.data for i in batch]), len(batch))
            for batch in data.batched(self.query_set.instances(), 50)
        ]
        shapes = query_shapes(self.query_set, sizes.queries_per_shape)
        # shapes interleaved, as a viewer's users would send them
        self.queries = [
            q for group in zip(*(s.queries for s in shapes), strict=True) for q in group
        ]
        study = data.study_uid(CT_KIND, 0)
        series = data.series_uid(CT_KIND, 0, 0)
        self.metadata_path = f"/studies/{study}/series/{series}/metadata"


def run_configuration(replicas: int, url: str, workload: Workload, workdir: Path) -> dict[str, Any]:
    """Start `replicas` servers on a fresh schema and blob directory, run the workload."""
    schema = f"bench_replicas_{secrets.token_hex(4)}"
    blobs = workdir / f"blobs-{schema}"
    blobs.mkdir(parents=True)
    settings = {
        "HOUNSFIELD_INDEX_URL": f"{url}?schema={schema}",
        "HOUNSFIELD_BLOB_URL": blobs.as_uri(),
        "HOUNSFIELD_DIMSE_ENABLED": "false",
    }
    servers: list[RunningArchive] = []
    sizes = workload.sizes
    # PostgreSQL's backends are not the bench's children, so only the load before is recorded
    out: dict[str, Any] = {"replicas": replicas, "schema": schema, "busy_before": 0.0}
    out["busy_before"] = round(machine.cpu_busy(1.0), 2)
    try:
        for n in range(replicas):  # one at a time: each applies the migrations under a lock
            servers.append(
                hounsfield_server.start(
                    workdir / f"{schema}-{n}", label=f"replica {n}", settings=settings
                )
            )
        bases = [s.base_url for s in servers]
        pids = [s.server_pid() for s in servers]
        ct = spread(bases, [stow_job(b) for b, _ in workload.ct], sizes.clients, pids)
        ct["instances_per_second"] = sum(n for _, n in workload.ct) / ct["seconds"]
        out["stow_ct"] = ct
        say(f"  {replicas} replica(s): STOW-RS CT {ct['instances_per_second']:.0f} inst/s")
        tiny = spread(bases, [stow_job(b) for b, _ in workload.tiny], sizes.clients, pids)
        tiny["instances_per_second"] = sum(n for _, n in workload.tiny) / tiny["seconds"]
        out["stow_tiny"] = tiny
        say(f"  {replicas} replica(s): STOW-RS tiny {tiny['instances_per_second']:.0f} inst/s")
        with psycopg.connect(url, autocommit=True) as conn:  # fresh tables: plan on real stats
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("ANALYZE")
        out["qido"] = spread(bases, [qido_job(q) for q in workload.queries], sizes.clients, pids)
        say(f"  {replicas} replica(s): QIDO-RS {out['qido']['per_second']:.0f} req/s")
        metadata = [metadata_job(workload.metadata_path, sizes.ct_slices)] * sizes.metadata_requests
        out["metadata"] = spread(bases, metadata, sizes.clients, pids)
        say(f"  {replicas} replica(s): metadata {out['metadata']['per_second']:.0f} req/s")
        out["rss_mb"] = [s.rss_mb() for s in servers]
    finally:
        for server in servers:
            server.stop()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(blobs, ignore_errors=True)
    return out


FIGURES = (
    ("stow_ct", "instances_per_second", "STOW-RS ingest, 512² CT", "inst/s"),
    ("stow_tiny", "instances_per_second", "STOW-RS ingest, 8×8 instances, batches of 50", "inst/s"),
    ("qido", "per_second", "QIDO-RS, the 7 viewer shapes mixed", "req/s"),
    ("metadata", "per_second", "WADO-RS series metadata", "req/s"),
)


def table(runs: list[dict[str, Any]], sizes: Sizes) -> tuple[str, dict[str, Any]]:
    """Markdown table (mean of the rounds per configuration) and the figures behind it."""
    figures: dict[str, Any] = {}
    lines = [
        "| figure | unit | 1 process | 2 processes | 2 / 1 | p50 / p95 ms, 1 → 2 "
        "| server CPU ms per request, 1 → 2 |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for key, field, name, unit in FIGURES:
        label = name
        by: dict[int, list[float]] = {1: [], 2: []}
        p50: dict[int, list[float]] = {1: [], 2: []}
        p95: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}
        for run in runs:
            cpu[run["replicas"]].append(run[key]["server_cpu_ms_per_request"])
            by[run["replicas"]].append(run[key][field])
            p50[run["replicas"]].append(run[key]["latency"]["p50_ms"])
            p95[run["replicas"]].append(run[key]["latency"]["p95_ms"])
        one, two = statistics.fmean(by[1]), statistics.fmean(by[2])
        figures[key] = {"1": one, "2": two, "ratio": two / one, "rounds": by}
        if key == "stow_ct":
            label += f", batches of {sizes.ct_batch}"
        if key == "metadata":
            label += f", {sizes.ct_slices} instances"
        latency = (
            f"{statistics.fmean(p50[1]):.1f} / {statistics.fmean(p95[1]):.1f} → "
            f"{statistics.fmean(p50[2]):.1f} / {statistics.fmean(p95[2]):.1f}"
        )
        lines.append(
            f"| {label} | {unit} | {one:,.0f} | {two:,.0f} | {two / one:.2f}× | {latency} "
            f"| {statistics.fmean(cpu[1]):.1f} → {statistics.fmean(cpu[2]):.1f} |"
        )
    return "\n".join(lines) + "\n", figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (1, 2) in ABBA order")
    parser.add_argument("--clients", type=int, help="client threads (default 4)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = Sizes.smoke() if args.smoke else Sizes()
    if args.clients:
        sizes.clients = args.clients
    rounds = 1 if args.smoke else args.rounds
    started = datetime.now(UTC)
    say("building the workload")
    workload = Workload(sizes)
    order = [n for r in range(rounds) for n in ((1, 2) if r % 2 == 0 else (2, 1))]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hf-bench-replicas-") as tmp:
        for replicas in order:
            say(f"{replicas} replica(s) on a fresh schema")
            runs.append(run_configuration(replicas, args.url, workload, Path(tmp)))
    text, figures = table(runs, sizes)
    wrong = sum(run[key]["wrong"] for run in runs for key, *_ in FIGURES)
    out = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": "python -m bench.replicas " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": report.machine(),
        "sizes": sizes.__dict__,
        "order": order,
        "figures": figures,
        "runs": runs,
        "wrong_answers": wrong,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"replicas-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    say(f"results: {path}")
    print(text)
    if wrong:
        say(f"{wrong} wrong answers: see {path}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
