"""Does a cache make series metadata faster? `RetrieveService.metadata` for one CT series with
no cache, the in-process LRU (`memory://`) and Redis (`redis://`), over the SQLite and the
PostgreSQL index (issue 5, DESIGN.md §2 `Cache` port).

    python -m bench.cache_metadata
    python -m bench.cache_metadata --postgres postgresql://postgres@127.0.0.1:5432/test \
        --redis redis://127.0.0.1:6379/0 --instances 300 --repeats 300

Real 512² CT slices (`bench.data`) are ingested, so the documents are the archive's own. Every
call lists the series from the index (the cache never says what exists); the cache replaces
only the read of the documents. Timed in-process, without HTTP: the front end adds the same
work in every case. p50 / p95 in ms of the warm calls; "first" is the call that fills the
cache. This is a measurement, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from bench.data import CtSeriesSpec, ct_instances
from hounsfield.bootstrap import open_archive, open_cache
from hounsfield.config import load_settings
from hounsfield.services.caching import MetadataDocuments
from hounsfield.services.retrieve import RetrieveService


def measure(
    retrieve: RetrieveService, study: str, series: str, repeats: int
) -> tuple[float, float, float, int]:
    started = time.perf_counter()
    documents = retrieve.metadata("default", study, series)
    first = (time.perf_counter() - started) * 1000
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        retrieve.metadata("default", study, series)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return first, statistics.median(times), p95, sum(len(d) for _, d in documents)


def run_index(name: str, index_url: str, args: argparse.Namespace, work: Path) -> None:
    settings = load_settings(
        None,
        {
            "HOUNSFIELD_DATA_DIR": str(work / name),
            "HOUNSFIELD_INDEX_URL": index_url,
            "HOUNSFIELD_CACHE_URL": "none://",
            "HOUNSFIELD_DURABLE": "false",
        },
    )
    archive = open_archive(settings)
    try:
        instances = list(ct_instances(CtSeriesSpec(studies=1, slices=args.instances)))
        staging, ingest = archive.services.staging, archive.services.ingest
        for start in range(0, len(instances), 50):
            staged = [staging.stage_bytes(i.data) for i in instances[start : start + 50]]
            ingest.ingest_files(staged, "default")
        study, series = instances[0].study_uid, instances[0].series_uid
        caches = {"none": "none://", "memory": "memory://"}
        if args.redis:
            caches["redis"] = f"{args.redis}?prefix=bench-{secrets.token_hex(4)}:&ttl=600"
        for label, url in caches.items():
            cache = open_cache(url)
            documents = MetadataDocuments(cache) if cache is not None else None
            retrieve = RetrieveService(archive.index, archive.blobs, documents)
            first, p50, p95, size = measure(retrieve, study, series, args.repeats)
            print(
                f"| {name} | {label} | {args.instances} | {size / 1024:.0f} KiB"
                f" | {first:.2f} | {p50:.2f} | {p95:.2f} |",
                flush=True,
            )
            if cache is not None:
                if label == "redis":
                    cache.delete([f"md:default:{i.sop_uid}" for i in instances])
                cache.close()
    finally:
        archive.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--postgres", help="also over this PostgreSQL server (a fresh schema)")
    parser.add_argument("--redis", help="also with a Redis cache at this URL")
    args = parser.parse_args(argv)
    print("| index | cache | instances | documents | first ms | p50 ms | p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="hf-cache-bench-") as tmp:
        work = Path(tmp)
        run_index("sqlite", f"sqlite:///{work / 'index.db'}", args, work)
        if args.postgres:
            import psycopg

            schema = f"hf_bench_{secrets.token_hex(6)}"
            try:
                run_index("postgresql", f"{args.postgres}?schema={schema}", args, work)
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
