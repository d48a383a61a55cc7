"""The memory scenario of `bench.run`: server RSS while a 2 GB study is ingested (DESIGN.md §5:
"a 2 GB study is streamed, never held in memory; RSS < 500 MB while ingesting").

One CT study of 512² 16-bit slices (about 520 KB each; 4,000 slices for 2 GB) is generated as
it is sent, batch after batch of STOW-RS, so the client never holds more than one batch; the
server's resident memory (VmRSS of its process) is sampled every 100 ms from before the first
request to after the last answer. Reported: the RSS before, the peak and the mean during, and
the ingest rate; every batch must be answered 200.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import hounsfield as hounsfield_server
from bench import orthanc
from bench.data import STOW_CONTENT_TYPE, CtSeriesSpec, batched, ct_instances, multipart_body
from bench.report import Row, Target
from bench.scenarios import Problems
from bench.servers import RunningArchive

SLICE_BYTES = 512 * 512 * 2 + 4096  # pixels and a header, as bench.data writes them


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


def slices_of(gigabytes: float) -> int:
    return max(1, int(gigabytes * 1e9 / SLICE_BYTES))


def scenario(
    workdir: Path,
    gigabytes: float,
    batch: int,
    problems: Problems,
    say: Callable[[str], None],
    *,
    with_orthanc: bool = True,
) -> dict[str, Any]:
    """Each archive on a fresh server of its own, one after the other."""
    slices = slices_of(gigabytes)
    out: dict[str, Any] = {"gigabytes": gigabytes, "slices": slices, "batch": batch}
    starters: list[tuple[str, Callable[[], RunningArchive]]] = [
        ("Hounsfield", lambda: hounsfield_server.start(workdir / "memory-hounsfield" / "data"))
    ]
    if with_orthanc:
        starters.append(("Orthanc", lambda: orthanc.start(workdir / "memory-orthanc")))
    for name, start in starters:
        archive = start()
        try:
            say(f"memory: {name} ingesting {slices} slices ({gigabytes:g} GB) by STOW-RS")
            out[name] = {"version": archive.version, **ingest(archive, slices, batch)}
            figures = out[name]
            say(
                f"  {name}: peak RSS {figures['rss_peak_mb']} MB (before "
                f"{figures['rss_before_mb']} MB), {figures['instances_per_second']} inst/s"
            )
        except (RuntimeError, httpx.HTTPError) as exc:
            problems.add(name, f"memory scenario: {exc}")
        finally:
            archive.stop()
    return out


TARGET = Target("< 500 MB while ingesting a 2 GB study", at_most=500)


def rows(details: dict[str, Any], *, expected: bool) -> list[Row]:
    """The report row of the memory scenario (the peak, the mean beside it): when it ran, or
    without figures when it was `expected` to run and did not."""
    d = details.get("memory")
    if not d and expected:
        gigabytes = details["sizes"]["memory_gigabytes"]
        d = {"gigabytes": gigabytes, "slices": slices_of(gigabytes), "batch": 50}
    if not d:
        return []

    def text(figures: dict[str, Any]) -> str | None:
        if "rss_peak_mb" not in figures:
            return None
        return f"{figures['rss_peak_mb']:,.0f} (mean {figures['rss_mean_mb']:,.0f})"

    ours, theirs = d.get("Hounsfield", {}), d.get("Orthanc", {})
    return [
        Row(
            "memory_rss_peak",
            f"Server peak RSS while a {d['gigabytes']:g} GB study ({d['slices']:,} CT slices) is"
            f" ingested by STOW-RS, batches of {d['batch']}",
            "MB",
            "lower",
            ours.get("rss_peak_mb"),
            theirs.get("rss_peak_mb"),
            TARGET,
            hounsfield_text=text(ours),
            orthanc_text=text(theirs),
        )
    ]
