"""Pixel services against Orthanc: frames/s, rendered/s and time to first image.

    python -m bench.pixels [--smoke] [--no-orthanc] [--instances N] [--slices N]

Three sets of `--instances` 512x512 CT slices, stored uncompressed, in JPEG 2000 lossless and in
HTJ2K lossless, go to both archives by STOW-RS; then, for `--seconds` each at concurrency 8:
frames as stored (`transfer-syntax=*`), frames decoded to native little endian, and rendered
JPEG. Time to first image: a viewer opening a `--slices`-slice series, i.e. series metadata then
the rendered middle slice, from a fresh start of that series. Every answer is checked (status,
media type, size) before it counts. Hounsfield runs with two HTTP workers, without a rendered
output cache (`cache_url = none://`) and without HTJ2K copies, so that each request decodes:
what is measured is the codec path, not the cache. Results go to bench/results/pixels-*.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydicom

from bench import hounsfield as hounsfield_server
from bench import orthanc
from bench.data import (
    STOW_CONTENT_TYPE,
    CtSeriesSpec,
    Instance,
    batched,
    ct_instances,
    multipart_body,
)
from bench.scenarios import TIMEOUT
from bench.servers import RunningArchive
from hounsfield.services.pixels import codec, transcode
from hounsfield.services.pixels.image import image_info

ROOT = Path(__file__).resolve().parents[1]
EXPLICIT_LE = "1.2.840.10008.1.2.1"
J2K = "1.2.840.10008.1.2.4.90"
HTJ2K = "1.2.840.10008.1.2.4.201"
SETS = {"uncompressed": EXPLICIT_LE, "jpeg2000": J2K, "htj2k": HTJ2K}
SETS_KIND, SERIES_KIND = 8, 9  # bench.data kinds (single digits) no other benchmark uses
CONCURRENCY = 8


def encoded(instance: Instance, target: str) -> Instance:
    """The generated (Explicit VR LE) slice re-encoded in `target` by the archive's codecs."""
    if target == EXPLICIT_LE:
        return instance
    ds = pydicom.dcmread(BytesIO(instance.data))
    info = image_info(ds, EXPLICIT_LE)
    frame = codec.decode(info, ds.PixelData)
    del ds.PixelData
    data = b"".join(transcode.stream(ds, info, iter([frame]), target, 1, info.frame_size))
    return Instance(instance.study_uid, instance.series_uid, instance.sop_uid, data)


def stow(archive: RunningArchive, instances: Iterator[Instance]) -> int:
    stored = 0
    with httpx.Client(timeout=TIMEOUT) as client:
        for batch in batched(instances, 25):
            response = client.post(
                f"{archive.dicomweb}/studies",
                content=multipart_body([i.data for i in batch]),
                headers={"content-type": STOW_CONTENT_TYPE, "accept": "application/dicom+json"},
            )
            if response.status_code != 200:
                raise RuntimeError(f"{archive.name} STOW: {response.status_code} {response.text}")
            stored += len(batch)
    return stored


@dataclass
class Rate:
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_failure: str = ""

    def summary(self) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies) or [0.0]
        return {
            "per_second": self.requests / self.seconds if self.seconds else 0.0,
            "requests": self.requests,
            "failures": self.failures,
            "p50_ms": ms[len(ms) // 2],
            "p95_ms": ms[min(len(ms) - 1, int(len(ms) * 0.95))],
            "first_failure": self.first_failure,
        }


def hammer(
    urls: list[str], headers: dict[str, str], check: Callable[[httpx.Response], str], seconds: float
) -> Rate:
    """`CONCURRENCY` clients, each cycling through `urls` (different offsets), for `seconds`."""
    rate = Rate()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            index = offset
            while time.monotonic() < stop:
                url = urls[index % len(urls)]
                index += 1
                started = time.perf_counter()
                try:
                    response = client.get(url, headers=headers)
                    problem = check(response)
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - started
                with lock:
                    if problem:
                        rate.failures += 1
                        rate.first_failure = rate.first_failure or f"{url}: {problem}"
                    else:
                        rate.requests += 1
                        rate.latencies.append(elapsed)

    started = time.monotonic()
    threads = [
        threading.Thread(target=worker, args=(i * len(urls) // CONCURRENCY,))
        for i in range(CONCURRENCY)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate.seconds = time.monotonic() - started
    return rate


def expect(media: str, minimum: int) -> Callable[[httpx.Response], str]:
    def check(response: httpx.Response) -> str:
        if response.status_code != 200:
            return f"status {response.status_code}: {response.text[:200]}"
        content_type = response.headers.get("content-type", "")
        if media not in content_type:
            return f"content type {content_type!r}, expected {media}"
        if len(response.content) < minimum:
            return f"{len(response.content)} bytes, expected at least {minimum}"
        return ""

    return check


def instance_urls(archive: RunningArchive, instances: list[Instance]) -> list[str]:
    return [
        f"{archive.dicomweb}/studies/{i.study_uid}/series/{i.series_uid}/instances/{i.sop_uid}"
        for i in instances
    ]


def measure(
    archive: RunningArchive, sets: dict[str, list[Instance]], seconds: float
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    stored = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    native = 'multipart/related; type="application/octet-stream"'
    with httpx.Client(timeout=TIMEOUT) as client:  # warm-up: page cache, workers, imports
        for instances in sets.values():
            for url in instance_urls(archive, instances):
                client.get(url + "/frames/1", headers={"accept": stored})
    for name, instances in sets.items():
        urls = instance_urls(archive, instances)
        frames = [u + "/frames/1" for u in urls]
        rendered = [u + "/rendered" for u in urls]
        results[name] = {
            "frames_as_stored": hammer(
                frames, {"accept": stored}, expect("multipart/related", 1000), seconds
            ).summary(),
            "frames_decoded": hammer(
                frames, {"accept": native}, expect("multipart/related", 512 * 512 * 2), seconds
            ).summary(),
            "rendered_jpeg": hammer(
                rendered, {"accept": "image/jpeg"}, expect("image/jpeg", 1000), seconds
            ).summary(),
        }
        for scenario, figures in results[name].items():
            print(
                f"  {archive.name:10s} {name:13s} {scenario:17s} "
                f"{figures['per_second']:8.1f}/s  p50 {figures['p50_ms']:6.1f} ms  "
                f"failures {figures['failures']}",
                flush=True,
            )
    return results


def first_image(archive: RunningArchive, series: list[Instance], runs: int) -> dict[str, Any]:
    """Series metadata, then the rendered middle slice by Instance Number: what a viewer
    needs before it shows anything. The first run meets the series cold. The client parses
    the metadata with orjson (as fast as a browser's JSON.parse); the parts are kept apart."""
    study, series_uid = series[0].study_uid, series[0].series_uid
    base = f"{archive.dicomweb}/studies/{study}/series/{series_uid}"
    runs_ms: list[dict[str, float]] = []
    problems: list[str] = []
    for _ in range(runs):
        with httpx.Client(timeout=TIMEOUT) as client:
            started = time.perf_counter()
            metadata = client.get(base + "/metadata", headers={"accept": "application/dicom+json"})
            received = time.perf_counter()
            documents = orjson.loads(metadata.content) if metadata.status_code == 200 else []
            parsed = time.perf_counter()
            if len(documents) != len(series):
                problems.append(f"metadata {metadata.status_code}, {len(documents)} documents")
                continue
            by_number = sorted(
                documents, key=lambda d: int(d.get("00200013", {}).get("Value", [0])[0])
            )
            middle = by_number[len(by_number) // 2]["00080018"]["Value"][0]
            image = client.get(
                f"{base}/instances/{middle}/rendered", headers={"accept": "image/jpeg"}
            )
            done = time.perf_counter()
            if image.status_code != 200 or not image.headers["content-type"].startswith(
                "image/jpeg"
            ):
                problems.append(f"rendered {image.status_code}")
                continue
            runs_ms.append(
                {
                    "total": (done - started) * 1000,
                    "metadata": (received - started) * 1000,
                    "parse": (parsed - received) * 1000,
                    "rendered": (done - parsed) * 1000,
                }
            )
    print(
        f"  {archive.name:10s} first image of {len(series)} slices: "
        + ", ".join(
            f"{r['total']:.0f} ms (metadata {r['metadata']:.0f}, rendered {r['rendered']:.0f})"
            for r in runs_ms
        ),
        flush=True,
    )
    return {
        "slices": len(series),
        "cold_ms": runs_ms[0]["total"] if runs_ms else None,
        "warm_median_ms": (
            statistics.median(r["total"] for r in runs_ms[1:]) if len(runs_ms) > 1 else None
        ),
        "runs_ms": runs_ms,
        "problems": problems,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pixels", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes and 1 s per scenario")
    p.add_argument("--no-orthanc", action="store_true", help="Hounsfield only")
    p.add_argument("--instances", type=int, default=160, help="slices per syntax (default 160)")
    p.add_argument("--slices", type=int, default=500, help="slices of the first-image series")
    p.add_argument("--seconds", type=float, default=8.0, help="per scenario")
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.smoke:
        args.instances, args.slices, args.seconds = 4, 6, 1.0
    slices = list(ct_instances(CtSeriesSpec(len(SETS), args.instances, kind=SETS_KIND)))
    sets = {
        name: [encoded(i, syntax) for i in slices[n * args.instances : (n + 1) * args.instances]]
        for n, (name, syntax) in enumerate(SETS.items())
    }
    series = list(ct_instances(CtSeriesSpec(1, args.slices, kind=SERIES_KIND)))
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "instances_per_set": args.instances,
        "seconds_per_scenario": args.seconds,
        "concurrency": CONCURRENCY,
        "archives": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-pixels-") as scratch:
        work = Path(scratch)
        archives: list[Callable[[], RunningArchive]] = [
            lambda: hounsfield_server.start(
                work / "hounsfield" / "data",
                settings={
                    "HOUNSFIELD_HTTP_WORKERS": "2",
                    "HOUNSFIELD_CACHE_URL": "none://",
                    "HOUNSFIELD_HTJ2K_COPIES": "false",
                },
            )
        ]
        if not args.no_orthanc:
            archives.append(lambda: orthanc.start(work / "orthanc"))
        for start in archives:
            archive = start()
            try:
                print(f"{archive.name} {archive.version}: storing", flush=True)
                for instances in sets.values():
                    stow(archive, iter(instances))
                stow(archive, iter(series))
                report["archives"][archive.name] = {
                    "version": archive.version,
                    "scenarios": measure(archive, sets, args.seconds),
                    "first_image": first_image(archive, series, 4),
                }
            finally:
                archive.stop()
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"pixels-{stamp}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    ours = report["archives"].get("Hounsfield", {}).get("scenarios", {})
    failures = sum(f["failures"] for scenarios in ours.values() for f in scenarios.values())
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
