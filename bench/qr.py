"""DIMSE Query/Retrieve: C-FIND latency, C-GET and C-MOVE throughput, Hounsfield vs Orthanc.

    python -m bench.qr [--studies 500] [--slices 200] [--queries 200] [--no-orthanc]

Both archives get the same data through STOW-RS: a query population of tiny studies
(`bench.data.tiny_archive`) and one CT study of `--slices` 512² slices (~520 KB each). Then:

- C-FIND, Study Root, STUDY level, on one pynetdicom association kept open: an exact Patient ID,
  a Patient Name wild card and a Study Date range, `--queries` times each (p50 / p95 in ms,
  the client's wall time from request to final response);
- C-GET of the CT study by DCMTK getscu (one association, files written to a tmpfs-like
  scratch directory): instances/s;
- C-MOVE of the CT study by DCMTK movescu to a DCMTK storescp: instances/s.

The client is the same for both archives, so its cost is in both figures; ratios are what
matter (DESIGN.md §5). Results go to bench/results/qr-<stamp>.json and are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

import hounsfield
from bench import orthanc
from bench.data import CtSeriesSpec, TinyArchiveSpec, ct_instances, tiny_archive
from bench.servers import free_port, wait_ready

RESULTS = Path(__file__).parent / "results"
BOUNDARY = "bench-qr-boundary"
#: DCMTK leaves Nagle on unless TCP_NODELAY is set in the environment; without it every
#: C-STORE sub-operation waits ~40 ms for a delayed ACK, whichever archive sends it.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


@dataclass
class Archive:
    name: str
    version: str
    dicomweb: str
    base_url: str
    aet: str
    dimse_port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def say(message: str) -> None:
    print(f"[bench.qr] {message}", file=sys.stderr, flush=True)


def start_hounsfield(workdir: Path) -> Archive:
    data_dir = workdir / "hounsfield"
    data_dir.mkdir(parents=True)
    port, dimse = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(data_dir),
        "HOUNSFIELD_HTTP_PORT": str(port),
        "HOUNSFIELD_DIMSE_PORT": str(dimse),
        "HOUNSFIELD_LOG_LEVEL": "WARNING",
    }
    log_path = workdir / "hounsfield.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hounsfield.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{base}/api/health", log_path)
    return Archive(
        "Hounsfield",
        hounsfield.__version__,
        f"{base}/dicom-web",
        base,
        "HOUNSFIELD",
        dimse,
        process,
    )


def start_orthanc(workdir: Path) -> Archive:
    log: list[str] = []
    orthanc.ensure_installed(log)
    running = orthanc.start(workdir / "orthanc")
    config = json.loads((workdir / "orthanc" / "orthanc.json").read_text())
    # Orthanc answers C-FIND/C-GET/C-MOVE only from known modalities by default
    # (DicomAlwaysAllowFind/Get/Move are false): declare the bench's clients.
    for aet in ("BENCHFIND", "BENCHGET", "BENCHMOVE"):
        httpx.put(
            f"{running.base_url}/modalities/{aet}",
            json={"AET": aet, "Host": "127.0.0.1", "Port": 104},
        ).raise_for_status()
    return Archive(
        "Orthanc",
        running.version,
        running.dicomweb,
        running.base_url,
        str(config["DicomAet"]),
        int(config["DicomPort"]),
        running.process,
    )


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stow(archive: Archive, objects: Iterator[bytes], batch: int) -> int:
    stored = 0
    with httpx.Client(timeout=300) as client:
        for parts in _batches(objects, batch):
            body = bytearray()
            for part in parts:
                body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                body += part + b"\r\n"
            body += f"--{BOUNDARY}--\r\n".encode()
            response = client.post(
                f"{archive.dicomweb}/studies",
                content=bytes(body),
                headers={
                    "Content-Type": "multipart/related; "
                    f'type="application/dicom"; boundary={BOUNDARY}',
                    "Accept": "application/dicom+json",
                },
            )
            if response.status_code not in (200, 202):
                raise RuntimeError(f"STOW to {archive.name}: {response.status_code}")
            stored += len(parts)
    return stored


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "n": len(ordered),
    }


def c_find(archive: Archive, shapes: dict[str, dict[str, str]], repeat: int) -> dict[str, Any]:
    ae = AE(ae_title="BENCHFIND")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", archive.dimse_port, ae_title=archive.aet)
    if not assoc.is_established:
        raise RuntimeError(f"no association with {archive.name}")
    # pynetdicom leaves Nagle on: each response would wait for a delayed ACK (DESIGN.md §4).
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    results: dict[str, Any] = {}
    try:
        for shape, keys in shapes.items():
            samples: list[float] = []
            matches = 0
            for _ in range(repeat):
                query = Dataset()
                query.QueryRetrieveLevel = "STUDY"
                query.StudyInstanceUID = ""
                query.PatientName = ""
                query.StudyDate = ""
                for keyword, value in keys.items():
                    setattr(query, keyword, value)
                started = time.perf_counter()
                found = 0
                for status, _ in assoc.send_c_find(
                    query, StudyRootQueryRetrieveInformationModelFind
                ):
                    if status and int(status.Status) in (0xFF00, 0xFF01):
                        found += 1
                samples.append(time.perf_counter() - started)
                matches = found
            results[shape] = {**percentiles(samples), "matches": matches}
    finally:
        assoc.release()
    return results


def c_get(archive: Archive, study_uid: str, scratch: Path, expected: int) -> dict[str, Any]:
    out = scratch / f"get-{archive.name}"
    out.mkdir()
    started = time.perf_counter()
    done = subprocess.run(
        [
            "getscu",
            "-S",
            "-aet",
            "BENCHGET",
            "-aec",
            archive.aet,
            "-od",
            str(out),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study_uid}",
            "127.0.0.1",
            str(archive.dimse_port),
        ],
        capture_output=True,
        check=False,
        env=DCMTK_ENV,
    )
    seconds = time.perf_counter() - started
    received = len(list(out.iterdir()))
    shutil.rmtree(out)
    if done.returncode != 0 or received != expected:
        say(f"C-GET from {archive.name}: {received}/{expected} ({done.stderr[-300:]!r})")
    return {
        "instances": received,
        "seconds": round(seconds, 3),
        "per_second": round(received / seconds, 1),
    }


def c_move(archive: Archive, study_uid: str, scratch: Path, expected: int) -> dict[str, Any]:
    out = scratch / f"move-{archive.name}"
    out.mkdir()
    port = free_port()
    storescp = subprocess.Popen(
        ["storescp", "-aet", "BENCHDEST", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=DCMTK_ENV,
    )
    try:
        if archive.name == "Orthanc":
            httpx.put(
                f"{archive.base_url}/modalities/BENCHDEST",
                json={"AET": "BENCHDEST", "Host": "127.0.0.1", "Port": port},
            ).raise_for_status()
        else:
            httpx.put(
                f"{archive.base_url}/api/remote-aes/BENCHDEST",
                json={"host": "127.0.0.1", "port": port},
            ).raise_for_status()
        time.sleep(0.3)
        started = time.perf_counter()
        done = subprocess.run(
            [
                "movescu",
                "-S",
                "-aet",
                "BENCHMOVE",
                "-aec",
                archive.aet,
                "-aem",
                "BENCHDEST",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                f"StudyInstanceUID={study_uid}",
                "127.0.0.1",
                str(archive.dimse_port),
            ],
            capture_output=True,
            check=False,
            env=DCMTK_ENV,
        )
        seconds = time.perf_counter() - started
    finally:
        storescp.terminate()
        storescp.wait(timeout=30)
    received = len(list(out.iterdir()))
    shutil.rmtree(out)
    if done.returncode != 0 or received != expected:
        say(f"C-MOVE from {archive.name}: {received}/{expected} ({done.stderr[-300:]!r})")
    return {
        "instances": received,
        "seconds": round(seconds, 3),
        "per_second": round(received / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args(argv)

    population = tiny_archive(TinyArchiveSpec(studies=args.studies))
    probe = population.studies[len(population.studies) // 2]
    shapes = {
        "patient_id": {"PatientID": probe.patient_id},
        "patient_name_wildcard": {"PatientName": probe.patient_name.split("^")[0][:3] + "*"},
        "study_date_range": {"StudyDate": f"{probe.study_date}-{probe.study_date}"},
    }
    ct_study = next(ct_instances(CtSeriesSpec(studies=1, slices=1, kind=3))).study_uid

    report: dict[str, Any] = {"args": vars(args), "shapes": shapes, "archives": {}}
    with tempfile.TemporaryDirectory(prefix="bench-qr-") as tmp:
        workdir = Path(tmp)
        starters = [start_hounsfield] + ([] if args.no_orthanc else [start_orthanc])
        for starter in starters:
            archive = starter(workdir)
            try:
                say(f"{archive.name}: loading {args.studies} studies and {args.slices} CT slices")
                stow(archive, (i.data for i in population.instances()), 200)
                stow(
                    archive,
                    (i.data for i in ct_instances(CtSeriesSpec(1, args.slices, kind=3))),
                    25,
                )
                say(f"{archive.name}: C-FIND")
                found = c_find(archive, shapes, args.queries)
                say(f"{archive.name}: C-GET and C-MOVE of {args.slices} instances")
                report["archives"][archive.name] = {
                    "version": archive.version,
                    "c_find": found,
                    "c_get": c_get(archive, ct_study, workdir, args.slices),
                    "c_move": c_move(archive, ct_study, workdir, args.slices),
                }
            finally:
                archive.stop()
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (RESULTS / f"qr-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["archives"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
