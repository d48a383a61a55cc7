"""The pixel scenarios of `bench.run`: frames/s and rendered/s, and a viewer opening a study.

Data (deterministic, `bench.data`): three sets of 512² 16-bit CT slices stored uncompressed, in
JPEG 2000 lossless and in HTJ2K lossless; one 100-frame 512² Enhanced CT; one 500-slice CT
series. Each archive gets them by STOW-RS on a fresh server of its own, then:

- *Throughput* at concurrency 8, `seconds` per request kind, cycling over every instance (or
  every frame of the multi-frame): frame 1 as stored (`transfer-syntax=*`, PS3.18 8.7.3.5), the
  compressed frames decoded to Explicit VR Little Endian (PS3.18 8.7.3.3.2), and `/rendered` as
  JPEG (PS3.18 9.5). The load generator is `wrk` (C, one event loop per thread) when installed:
  a Python client spends as much of the 2 cores as the server and under-measures it. Before a
  kind is loaded, three of its answers are checked (status, media type, size); an archive that
  answers wrongly "fails" that kind, and `wrk`'s non-2xx answers are not counted as served.
- *Viewer*: what OHIF (v3, DICOMweb data source) requests to show a study: the study's
  metadata (PS3.18 10.4.1.1.2), then every frame of every instance in Instance Number order over
  6 connections (a browser's HTTP/1.1 connections per host), the first (displayed) frame
  requested first, as stored (`transfer-syntax=*`) and with a browser's `Accept-Encoding`.
  Time to first image: until that frame has arrived; to the whole study: until the last one
  has. The first of the runs meets the study cold (never read since it was stored). Orthanc
  gzips every answer for such a client (its default `"HttpCompressionEnabled": true`), frames
  included; the series is also loaded with `Accept-Encoding: identity`, which shows that cost.

Hounsfield runs with two HTTP workers, without a rendered-output cache (`cache_url = none://`)
and without HTJ2K copies, so that every request renders and transcodes: the codec path is
measured, not a cache of outputs. Decoded frames still go through the decoded-frame cache
(64 MiB per worker); the 160 slices of a set (80 MB decoded) are more than it holds, but not
so many that no request is a hit, so the JPEG 2000 rows mix cached and cold decodes (a cold
one is ~26 ms). Orthanc runs as in the rest of `bench.run`.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    enhanced_ct,
    multipart_body,
)
from bench.report import Row, Target
from bench.scenarios import TIMEOUT, Problems
from hounsfield.services.pixels import codec, transcode
from hounsfield.services.pixels.image import image_info

EXPLICIT_LE = "1.2.840.10008.1.2.1"
J2K = "1.2.840.10008.1.2.4.90"
HTJ2K = "1.2.840.10008.1.2.4.201"
SYNTAXES = {"uncompressed": EXPLICIT_LE, "jpeg2000": J2K, "htj2k": HTJ2K}
SETS_KIND, SERIES_KIND = 8, 9  # bench.data kinds; these servers hold nothing else
CONCURRENCY = 8  # DESIGN.md §5: frames/s at concurrency 8
BROWSER_CONNECTIONS = 6  # HTTP/1.1 connections per host of Chrome and Firefox
VIEWER_BUDGET = 60.0  # seconds: no new viewer run once this is spent (at least one is made)
BROWSER_ENCODING = "gzip, deflate"  # what any browser sends (br is left out: httpx needs brotli)
FRAME_BYTES = 512 * 512 * 2
STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
NATIVE = 'multipart/related; type="application/octet-stream"'
JPEG = "image/jpeg"
#: Every request decodes: no rendered-output cache, no background HTJ2K copies.
HOUNSFIELD_SETTINGS = {
    "HOUNSFIELD_HTTP_WORKERS": "2",
    "HOUNSFIELD_CACHE_URL": "none://",
    "HOUNSFIELD_HTJ2K_COPIES": "false",
}


@dataclass
class PixelSizes:
    instances: int  # slices per transfer syntax
    series_slices: int  # the study the viewer opens
    frames: int  # of the multi-frame object
    seconds: int  # per request kind and archive
    viewer_runs: int

    @classmethod
    def smoke(cls) -> PixelSizes:
        return cls(instances=4, series_slices=6, frames=10, seconds=1, viewer_runs=1)

    @classmethod
    def default(cls) -> PixelSizes:
        return cls(instances=160, series_slices=500, frames=100, seconds=10, viewer_runs=3)


@dataclass
class PixelData:
    sets: dict[str, list[Instance]]  # by SYNTAXES key
    series: list[Instance]
    multiframe: Instance
    frames: int

    def everything(self) -> Iterator[Instance]:
        for instances in self.sets.values():
            yield from instances
        yield from self.series
        yield self.multiframe


def pixel_data(sizes: PixelSizes) -> PixelData:
    slices = list(ct_instances(CtSeriesSpec(len(SYNTAXES), sizes.instances, kind=SETS_KIND)))
    n = sizes.instances
    return PixelData(
        sets={
            name: [encoded(i, syntax) for i in slices[k * n : (k + 1) * n]]
            for k, (name, syntax) in enumerate(SYNTAXES.items())
        },
        series=list(ct_instances(CtSeriesSpec(1, sizes.series_slices, kind=SERIES_KIND))),
        multiframe=enhanced_ct(sizes.frames),
        frames=sizes.frames,
    )


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


def stow(dicomweb: str, name: str, instances: Iterator[Instance], batch: int = 25) -> int:
    """Store by STOW-RS; every request must be answered 200 (the data is the scenario's)."""
    stored = 0
    with httpx.Client(timeout=TIMEOUT) as client:
        for group in batched(instances, batch):
            response = client.post(
                f"{dicomweb}/studies",
                content=multipart_body([i.data for i in group]),
                headers={"content-type": STOW_CONTENT_TYPE, "accept": "application/dicom+json"},
            )
            if response.status_code != 200:
                raise RuntimeError(f"{name} STOW: {response.status_code} {response.text[:300]}")
            stored += len(group)
    return stored


def instance_url(dicomweb: str, instance: Instance) -> str:
    return (
        f"{dicomweb}/studies/{instance.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_uid}"
    )


# --- throughput -----------------------------------------------------------------------------

Check = Callable[[httpx.Response], str]


def expect(media: str, minimum: int) -> Check:
    """An answer counts if it is a 200 of the media type with at least `minimum` bytes (a
    decoded 512² frame is 524,288 bytes: an archive that sends the compressed bytes fails)."""

    def check(response: httpx.Response) -> str:
        if response.status_code != 200:
            return f"status {response.status_code}: {_reason(response)}"
        content_type = response.headers.get("content-type", "")
        if media not in content_type:
            return f"content type {content_type!r}, expected {media}"
        if len(response.content) < minimum:
            return f"{len(response.content)} bytes, expected at least {minimum}"
        return ""

    return check


def _reason(response: httpx.Response) -> str:
    """An error answer in a few words: Orthanc's JSON "Details" or "Message", else the text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = str(body.get("Details") or body.get("Message") or body)
    else:
        text = response.text
    return " ".join(text.split())[:120]


@dataclass
class Load:
    """One request kind: the URLs cycled over, their Accept header and the answer's check."""

    key: str
    urls: list[str]
    accept: str
    check: Check


def loads(dicomweb: str, data: PixelData) -> list[Load]:
    out: list[Load] = []
    for name, instances in data.sets.items():
        urls = [instance_url(dicomweb, i) for i in instances]
        frames = [u + "/frames/1" for u in urls]
        stored_minimum = FRAME_BYTES if name == "uncompressed" else 1000
        out.append(
            Load(f"{name}/frames", frames, STORED, expect("multipart/related", stored_minimum))
        )
        if name != "uncompressed":
            out.append(
                Load(
                    f"{name}/frames_decoded",
                    frames,
                    NATIVE,
                    expect("multipart/related", FRAME_BYTES),
                )
            )
        out.append(
            Load(f"{name}/rendered", [u + "/rendered" for u in urls], JPEG, expect(JPEG, 1000))
        )
    base = instance_url(dicomweb, data.multiframe)
    numbers = range(1, data.frames + 1)
    out.append(
        Load(
            "multiframe/frames",
            [f"{base}/frames/{k}" for k in numbers],
            STORED,
            expect("multipart/related", FRAME_BYTES),
        )
    )
    out.append(
        Load(
            "multiframe/rendered",
            [f"{base}/frames/{k}/rendered" for k in numbers],
            JPEG,
            expect(JPEG, 1000),
        )
    )
    return out


def probe(load: Load) -> str:
    """The first, middle and last answers checked; '' when all three are right."""
    headers = {"accept": load.accept, "accept-encoding": "identity"}
    with httpx.Client(timeout=TIMEOUT) as client:
        for url in {load.urls[0], load.urls[len(load.urls) // 2], load.urls[-1]}:
            try:
                problem = load.check(client.get(url, headers=headers))
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                return problem
    return ""


_LUA = """
local urls = {}
for line in io.lines("%s") do urls[#urls + 1] = line end
local i = 0
request = function()
  i = i %% #urls + 1
  return wrk.format("GET", urls[i], {["Accept"] = "%s"})
end
"""


def run_wrk(load: Load, seconds: int, work: Path) -> dict[str, Any]:
    """`wrk` on 2 threads and CONCURRENCY connections, cycling over the load's URLs (no
    Accept-Encoding: answers are not compressed). Non-2xx answers are not counted as served."""
    work.mkdir(parents=True, exist_ok=True)
    slug = load.key.replace("/", "-")
    paths = work / f"{slug}.txt"
    paths.write_text(
        "\n".join("/" + u.split("://", 1)[1].split("/", 1)[1] for u in load.urls) + "\n"
    )
    script = work / f"{slug}.lua"
    script.write_text(_LUA % (paths, load.accept.replace('"', '\\"')))
    base = load.urls[0].split("/dicom-web")[0]
    command = [
        "wrk", "-t2", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "30s", "--latency",
        "-s", str(script), base,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 90
    )
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors:\s+connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    requests = int(total.group(1)) if total else 0
    non_2xx = int(errors.group(1)) if errors else 0
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    per_second = float(rate.group(1)) if rate else 0.0
    return {
        "client": "wrk",
        "per_second": per_second * (requests - non_2xx) / requests if requests else 0.0,
        "requests": requests,
        "failures": non_2xx + (sum(int(x) for x in sockets.groups()) if sockets else 0),
        "p50_ms": round(float(p50.group(1)) * scale[p50.group(2)], 2) if p50 else None,
        "raw": out if not rate else "",
        "stderr": done.stderr[-500:],
    }


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
            "client": "python",
            "per_second": self.requests / self.seconds if self.seconds else 0.0,
            "requests": self.requests,
            "failures": self.failures,
            "p50_ms": ms[len(ms) // 2],
            "p95_ms": ms[min(len(ms) - 1, int(len(ms) * 0.95))],
            "first_failure": self.first_failure,
        }


def hammer(load: Load, seconds: float) -> dict[str, Any]:
    """The fallback without `wrk`: CONCURRENCY httpx clients in threads, each cycling over the
    URLs from its own offset, every answer checked. A floor: the client shares the cores."""
    rate = Rate()
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    headers = {"accept": load.accept, "accept-encoding": "identity"}

    def worker(offset: int) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            index = offset
            while time.monotonic() < stop:
                url = load.urls[index % len(load.urls)]
                index += 1
                started = time.perf_counter()
                try:
                    problem = load.check(client.get(url, headers=headers))
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
        threading.Thread(target=worker, args=(i * len(load.urls) // CONCURRENCY,))
        for i in range(CONCURRENCY)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate.seconds = time.monotonic() - started
    return rate.summary()


def throughput(
    name: str,
    dicomweb: str,
    data: PixelData,
    seconds: int,
    work: Path,
    problems: Problems,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every request kind of `loads`, one after the other; a kind whose answers are wrong is
    recorded as {"fails": why} and not loaded."""
    use_wrk = shutil.which("wrk") is not None
    kinds = loads(dicomweb, data)
    with httpx.Client(timeout=TIMEOUT) as client:  # warm-up: page cache, workers, imports
        for load in kinds:
            if load.key.endswith("/frames"):
                for url in load.urls:
                    client.get(url, headers={"accept": STORED, "accept-encoding": "identity"})
    out: dict[str, Any] = {}
    for load in kinds:
        problem = probe(load)
        if problem:
            out[load.key] = {"fails": problem}
            problems.add(name, f"{load.key} fails: {problem}")
            say(f"  {name:10s} {load.key:26s} fails: {problem[:100]}")
            continue
        figures = run_wrk(load, seconds, work) if use_wrk else hammer(load, seconds)
        if figures["failures"]:
            problems.add(name, f"{load.key}: {figures['failures']} failed answers under load")
        out[load.key] = figures
        say(
            f"  {name:10s} {load.key:26s} {figures['per_second']:8.1f}/s"
            f"  p50 {figures['p50_ms'] or 0:6.1f} ms  failures {figures['failures']}"
        )
    return out


# --- a viewer opening a study ---------------------------------------------------------------


def viewer(
    name: str,
    dicomweb: str,
    study_uid: str,
    expected_frames: int,
    runs: int,
    problems: Problems,
    encoding: str = BROWSER_ENCODING,
) -> dict[str, Any]:
    """OHIF's requests for one study (see the module's docstring), `runs` times (fewer once
    VIEWER_BUDGET is spent), each on new connections as a new page would open them; times are
    the client's, parsing included."""
    meta_headers = {"accept": "application/dicom+json", "accept-encoding": encoding}
    frame_headers = {"accept": STORED, "accept-encoding": encoding}
    results: list[dict[str, float]] = []
    began = time.monotonic()
    for _ in range(runs):
        if results and time.monotonic() - began > VIEWER_BUDGET:
            break  # a slow archive: fewer runs (the JSON lists them), not a longer bench
        clients = [httpx.Client(timeout=TIMEOUT) for _ in range(BROWSER_CONNECTIONS)]
        try:
            started = time.perf_counter()
            response = clients[0].get(
                f"{dicomweb}/studies/{study_uid}/metadata", headers=meta_headers
            )
            if response.status_code != 200:
                problems.add(name, f"study metadata answered {response.status_code}")
                continue
            documents: list[dict[str, Any]] = orjson.loads(response.content)
            metadata_done = time.perf_counter()
            urls = frame_urls(dicomweb, documents)
            if len(urls) != expected_frames:
                problems.add(
                    name, f"study metadata lists {len(urls)} frames, {expected_frames} stored"
                )
                continue
            first, failures, compressed = _fetch_all(clients, urls, frame_headers)
            finished = time.perf_counter()
        finally:
            for client in clients:
                client.close()
        if failures:
            problems.add(name, f"viewer: {len(failures)} frames failed, e.g. {failures[0]}")
            continue
        results.append(
            {
                "metadata_ms": (metadata_done - started) * 1000,
                "first_image_ms": (first - started) * 1000,
                "all_frames_ms": (finished - started) * 1000,
                "frames_content_encoded": compressed,  # Orthanc gzips frames for a browser
            }
        )
    out: dict[str, Any] = {"frames": expected_frames, "runs": results}
    for key in ("metadata_ms", "first_image_ms", "all_frames_ms"):
        values = [r[key] for r in results]
        out[key] = statistics.median(values) if values else None
        out[f"cold_{key}"] = values[0] if values else None
    return out


def frame_urls(dicomweb: str, documents: list[dict[str, Any]]) -> list[str]:
    """Every frame of every instance of the metadata, by Instance Number (0020,0013), frames
    by Number of Frames (0028,0008); the order a stack viewer loads them in."""

    def value(document: dict[str, Any], tag: str, default: int) -> int:
        values = document.get(tag, {}).get("Value") or [default]
        return int(values[0])

    urls: list[str] = []
    for document in sorted(documents, key=lambda d: value(d, "00200013", 0)):
        base = (
            f"{dicomweb}/studies/{document['0020000D']['Value'][0]}"
            f"/series/{document['0020000E']['Value'][0]}"
            f"/instances/{document['00080018']['Value'][0]}"
        )
        urls += [f"{base}/frames/{k}" for k in range(1, value(document, "00280008", 1) + 1)]
    return urls


def _fetch_all(
    clients: list[httpx.Client], urls: list[str], headers: dict[str, str]
) -> tuple[float, list[str], int]:
    """GET every URL over the clients (one connection each), first URL first; return when the
    first answer arrived, the failed ones, and how many came with a Content-Encoding."""
    check = expect("multipart/related", FRAME_BYTES)
    lock = threading.Lock()
    pending = iter(enumerate(urls))
    first = [0.0]
    failures: list[str] = []
    compressed = [0]

    def worker(client: httpx.Client) -> None:
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            index, url = item
            try:
                response = client.get(url, headers=headers)
                problem = check(response)
                if response.headers.get("content-encoding"):
                    with lock:
                        compressed[0] += 1
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if index == 0:
                first[0] = time.perf_counter()
            if problem:
                with lock:
                    failures.append(f"{url}: {problem}")

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return first[0], failures, compressed[0]


# --- the scenario ---------------------------------------------------------------------------


def scenario(
    workdir: Path,
    sizes: PixelSizes,
    problems: Problems,
    say: Callable[[str], None],
    *,
    with_orthanc: bool = True,
) -> dict[str, Any]:
    """Both archives, one after the other, each on a fresh server holding only this data."""
    say(
        f"pixels: generating {len(SYNTAXES)}×{sizes.instances} CT slices (J2K, HTJ2K encoded), "
        f"a {sizes.series_slices}-slice series and a {sizes.frames}-frame Enhanced CT"
    )
    data = pixel_data(sizes)
    starters: list[tuple[str, Callable[[], Any]]] = [
        (
            "Hounsfield",
            lambda: hounsfield_server.start(
                workdir / "pixels-hounsfield" / "data", settings=HOUNSFIELD_SETTINGS
            ),
        )
    ]
    if with_orthanc:
        starters.append(("Orthanc", lambda: orthanc.start(workdir / "pixels-orthanc")))
    out: dict[str, Any] = {
        "client": "wrk" if shutil.which("wrk") else "python",
        "concurrency": CONCURRENCY,
        "seconds": sizes.seconds,
        "sizes": sizes.__dict__,
        "hounsfield_settings": HOUNSFIELD_SETTINGS,
    }
    for name, start in starters:
        archive = start()
        try:
            say(f"pixels: storing into {name}")
            started = time.perf_counter()
            stored = stow(archive.dicomweb, name, data.everything())
            stow_seconds = time.perf_counter() - started
            figures = throughput(
                name, archive.dicomweb, data, sizes.seconds, workdir / "wrk", problems, say
            )
            series = viewer(
                name,
                archive.dicomweb,
                data.series[0].study_uid,
                len(data.series),
                sizes.viewer_runs,
                problems,
            )
            say(
                f"  {name:10s} viewer, {len(data.series)}-slice CT: first image "
                f"{series['first_image_ms'] or 0:.0f} ms, "
                f"whole series {series['all_frames_ms'] or 0:.0f} ms"
            )
            plain = viewer(
                name,
                archive.dicomweb,
                data.series[0].study_uid,
                len(data.series),
                sizes.viewer_runs,
                problems,
                encoding="identity",
            )
            say(
                f"  {name:10s} the same without compression: first image "
                f"{plain['first_image_ms'] or 0:.0f} ms, "
                f"whole series {plain['all_frames_ms'] or 0:.0f} ms"
            )
            multiframe = viewer(
                name,
                archive.dicomweb,
                data.multiframe.study_uid,
                data.frames,
                sizes.viewer_runs,
                problems,
            )
            say(
                f"  {name:10s} viewer, {data.frames}-frame Enhanced CT: first image "
                f"{multiframe['first_image_ms'] or 0:.0f} ms, all frames "
                f"{multiframe['all_frames_ms'] or 0:.0f} ms"
            )
            out[name] = {
                "version": archive.version,
                "stored": stored,
                "stow_seconds": round(stow_seconds, 2),
                "throughput": figures,
                "viewer_series": series,
                "viewer_series_identity": plain,
                "viewer_multiframe": multiframe,
                "rss_mb": archive.rss_mb(),
            }
        finally:
            archive.stop()
    return out


# --- report rows ----------------------------------------------------------------------------

TARGETS = {
    "uncompressed/frames": Target("≥ 3,000 frames/s", at_least=3000),
    "uncompressed/rendered": Target("≥ 1,500/s from uncompressed", at_least=1500),
    "htj2k/rendered": Target("≥ 500/s from HTJ2K", at_least=500),
}
SOURCES = {
    "uncompressed": "uncompressed",
    "jpeg2000": "JPEG 2000 lossless",
    "htj2k": "HTJ2K lossless",
}


def rows(details: dict[str, Any], *, expected: bool) -> list[Row]:
    """The report rows of the pixel scenario: when it ran, or without figures when it was
    `expected` to run and did not (so the report says what is missing)."""
    d = details.get("pixels")
    if not d and expected and details.get("pixel_sizes"):
        d = {"sizes": details["pixel_sizes"], "concurrency": CONCURRENCY, "client": "wrk"}
    if not d:
        return []
    sizes = d["sizes"]
    client = f"concurrency {d['concurrency']}, {d['client']}"
    labels: dict[str, tuple[str, str]] = {}
    for name, source in SOURCES.items():
        labels[f"{name}/frames"] = (
            f"WADO-RS frames, 512² CT {source}, as stored, {client}",
            "frames/s",
        )
        if name != "uncompressed":
            labels[f"{name}/frames_decoded"] = (
                f"WADO-RS frames, 512² CT {source}, decoded to native, {client}",
                "frames/s",
            )
    for name, source in SOURCES.items():
        labels[f"{name}/rendered"] = (
            f"WADO-RS rendered JPEG, 512² CT {source}, {client}",
            "images/s",
        )
    frames = sizes["frames"]
    labels["multiframe/frames"] = (
        f"WADO-RS frames of a {frames}-frame 512² Enhanced CT, as stored, {client}",
        "frames/s",
    )
    labels["multiframe/rendered"] = (
        f"WADO-RS rendered JPEG, frames of the {frames}-frame Enhanced CT, {client}",
        "images/s",
    )
    out: list[Row] = []
    for key, (label, unit) in labels.items():
        ours = d.get("Hounsfield", {}).get("throughput", {}).get(key, {})
        theirs = d.get("Orthanc", {}).get("throughput", {}).get(key, {})
        out.append(
            Row(
                key.replace("/", "_"),
                label,
                unit,
                "higher",
                ours.get("per_second"),
                theirs.get("per_second"),
                TARGETS.get(key),
                orthanc_failure=theirs.get("fails", ""),
            )
        )
    runs = sizes["viewer_runs"]
    median = f", median of up to {runs} runs (the first cold)" if runs > 1 else ""
    viewer = f"as OHIF loads it (study metadata, then frames on 6 connections){median}"
    slices = sizes["series_slices"]
    for key, part, label in (
        ("viewer_first_image", "series", f"Time to first image, {slices}-slice 512² CT, {viewer}"),
        ("viewer_whole_series", "series", f"Time to the whole {slices}-slice series, {viewer}"),
        (
            "viewer_whole_series_identity",
            "series_identity",
            f"Time to the whole {slices}-slice series, the same with Accept-Encoding: identity",
        ),
        (
            "viewer_multiframe",
            "multiframe",
            f"Time to all frames of the {frames}-frame Enhanced CT, {viewer}",
        ),
    ):
        figure = "first_image_ms" if key == "viewer_first_image" else "all_frames_ms"
        ours = d.get("Hounsfield", {}).get(f"viewer_{part}", {})
        theirs = d.get("Orthanc", {}).get(f"viewer_{part}", {})
        out.append(
            Row(
                key,
                label,
                "ms",
                "lower",
                ours.get(figure),
                theirs.get(figure),
                hounsfield_text=_with_cold(ours, figure, runs),
                orthanc_text=_with_cold(theirs, figure, runs),
            )
        )
    return out


def _with_cold(viewer: dict[str, Any], figure: str, planned: int) -> str | None:
    """The median, the cold run beside it, and how many runs when the time budget cut them."""
    value, cold = viewer.get(figure), viewer.get(f"cold_{figure}")
    if value is None:
        return None
    made = len(viewer.get("runs", []))
    notes = [f"cold {cold:,.0f}"] if made > 1 and cold is not None else []
    if made < planned:
        notes.append(f"{made} run" + ("s" if made > 1 else ""))
    return f"{value:,.0f}" + (f" ({'; '.join(notes)})" if notes else "")
