"""Server memory while a 2 GB study is ingested: Hounsfield against Orthanc (DESIGN.md §5:
"a 2 GB study is streamed, never held in memory; RSS < 500 MB while ingesting").

    python -m bench.memory [--gigabytes 2] [--batch 50] [--smoke] [--no-orthanc]

One CT study of 512² 16-bit slices (about 520 KB each; 4,000 slices for 2 GB) is generated as
it is sent, batch after batch of STOW-RS, so the client never holds more than one batch; the
server's resident memory (VmRSS of its process) is sampled every 100 ms from before the first
request to after the last answer. Reported: the RSS before, the peak and the mean during, and
the ingest rate; every batch must be answered 200. Results go to bench/results/memory-*.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import hounsfield as hounsfield_server
from bench import orthanc
from bench.data import STOW_CONTENT_TYPE, CtSeriesSpec, batched, ct_instances, multipart_body
from bench.servers import RunningArchive

SLICE_BYTES = 512 * 512 * 2 + 4096  # pixels and a header, as bench.data writes them
RESULTS = Path(__file__).resolve().parent / "results"


class RssSampler:
    """Samples a server's RSS in a thread until stopped."""

    def __init__(self, archive: RunningArchive, period: float = 0.1) -> None:
        self.archive = archive
        self.period = period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.archive.rss_mb()
            if value is not None:
                self.samples.append(value)
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ingest(archive: RunningArchive, slices: int, batch: int) -> dict[str, Any]:
    """STOW one study of `slices` CT slices in batches while sampling the server's RSS."""
    spec = CtSeriesSpec(studies=1, slices=slices, kind=7)
    before = archive.rss_mb()
    sent = 0
    started = time.perf_counter()
    with (
        RssSampler(archive) as sampler,
        httpx.Client(timeout=600) as client,
    ):
        for group in batched(ct_instances(spec), batch):
            body = multipart_body([i.data for i in group])
            response = client.post(
                f"{archive.dicomweb}/studies",
                content=body,
                headers={"content-type": STOW_CONTENT_TYPE},
            )
            if response.status_code != 200:
                raise RuntimeError(f"{archive.name}: STOW answered {response.status_code}")
            sent += len(body)
        seconds = time.perf_counter() - started
        time.sleep(0.5)  # what the server keeps once the last answer is out
    samples = sampler.samples or [0.0]
    return {
        "slices": slices,
        "bytes_sent": sent,
        "seconds": round(seconds, 2),
        "instances_per_second": round(slices / seconds, 1),
        "rss_before_mb": None if before is None else round(before, 1),
        "rss_peak_mb": round(max(samples), 1),
        "rss_mean_mb": round(statistics.fmean(samples), 1),
        "rss_after_mb": round(samples[-1], 1),
        "samples": len(samples),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    p.add_argument("--gigabytes", type=float, default=2.0, help="size of the study (default 2)")
    p.add_argument("--batch", type=int, default=50, help="instances per STOW-RS request")
    p.add_argument("--smoke", action="store_true", help="a 50 MB study: checks the harness")
    p.add_argument("--no-orthanc", action="store_true", help="Hounsfield only")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    gigabytes = 0.05 if args.smoke else args.gigabytes
    slices = max(1, int(gigabytes * 1e9 / SLICE_BYTES))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "gigabytes": gigabytes,
        "archives": {},
    }
    with tempfile.TemporaryDirectory(prefix="hf-bench-memory-") as scratch:
        work = Path(scratch)
        starters = [("Hounsfield", lambda: hounsfield_server.start(work / "hounsfield" / "data"))]
        if not args.no_orthanc:
            log: list[str] = []
            orthanc.ensure_installed(log)
            starters.append(("Orthanc", lambda: orthanc.start(work / "orthanc")))
        for name, start in starters:
            archive = start()
            try:
                print(f"[memory] {name}: ingesting {slices} slices ({gigabytes:g} GB)", flush=True)
                results["archives"][name] = {
                    "version": archive.version,
                    **ingest(archive, slices, args.batch),
                }
            finally:
                archive.stop()
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.results_dir / f"memory-{'smoke-' if args.smoke else ''}{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    for name, figures in results["archives"].items():
        print(
            f"[memory] {name}: peak RSS {figures['rss_peak_mb']} MB"
            f" (before {figures['rss_before_mb']} MB), {figures['instances_per_second']} inst/s",
            flush=True,
        )
    print(f"[memory] results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
