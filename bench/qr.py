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
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from bench import hounsfield as hounsfield_server
from bench import orthanc
from bench.data import (
    CtSeriesSpec,
    Instance,
    TinyArchiveSpec,
    batched,
    ct_instances,
    multipart_body,
    tiny_archive,
)
from bench.scenarios import Problems, latency_summary, stow_bodies
from bench.servers import RunningArchive, free_port

RESULTS = Path(__file__).parent / "results"
CLIENT_AETS = ("BENCHFIND", "BENCHGET", "BENCHMOVE")
#: One C-FIND: its identifier's keys and how many matches a correct archive returns (None:
#: not checked).
FindQuery = tuple[dict[str, str], int | None]
#: DCMTK leaves Nagle on unless TCP_NODELAY is set in the environment; without it every
#: C-STORE sub-operation waits ~40 ms for a delayed ACK, whichever archive sends it.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def say(message: str) -> None:
    print(f"[bench.qr] {message}", file=sys.stderr, flush=True)


def start_hounsfield(workdir: Path) -> RunningArchive:
    return hounsfield_server.start(workdir / "hounsfield")


def start_orthanc(workdir: Path) -> RunningArchive:
    orthanc.ensure_installed([])
    running = orthanc.start(workdir / "orthanc")
    for aet in CLIENT_AETS:
        orthanc.declare_modality(running, aet)
    return running


def stow(archive: RunningArchive, objects: Iterator[Instance], batch: int) -> int:
    """Load the archive through STOW-RS; any failed part stops the run."""
    problems = Problems()
    groups = batched(objects, batch)
    bodies = ((multipart_body([i.data for i in group]), len(group)) for group in groups)
    result = stow_bodies(archive.name, archive.dicomweb, bodies, problems, time_limit=3600)
    if problems.items:
        raise RuntimeError(f"STOW to {archive.name}: {problems.items[0]}")
    return result.instances


def c_find(archive: RunningArchive, shapes: dict[str, list[FindQuery]]) -> dict[str, Any]:
    """C-FIND (PS3.4 C.4.1), Study Root, STUDY level, every query of every shape on one
    association kept open; p50/p95/p99 of the client's wall time from request to final
    response, and how many answers had a wrong number of matches."""
    ae = AE(ae_title="BENCHFIND")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", archive.dimse_port, ae_title=archive.aet)
    if not assoc.is_established:
        raise RuntimeError(f"no association with {archive.name}")
    # pynetdicom leaves Nagle on: each response would wait for a delayed ACK (DESIGN.md §4).
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    results: dict[str, Any] = {}
    try:
        for shape, queries in shapes.items():
            samples: list[float] = []
            matches = 0
            wrong = 0
            for keys, expected in queries:
                query = Dataset()
                query.QueryRetrieveLevel = "STUDY"
                query.StudyInstanceUID = ""
                query.PatientName = ""
                query.StudyDate = ""
                for keyword, value in keys.items():
                    setattr(query, keyword, value)
                started = time.perf_counter()
                found = 0
                final = None
                for status, _ in assoc.send_c_find(
                    query, StudyRootQueryRetrieveInformationModelFind
                ):
                    if status and int(status.Status) in (0xFF00, 0xFF01):
                        found += 1
                    elif status:
                        final = int(status.Status)
                samples.append(time.perf_counter() - started)
                matches = found
                if final != 0 or (expected is not None and found != expected):
                    wrong += 1
                    say(f"C-FIND {keys} on {archive.name}: {found} matches, expected {expected}")
            results[shape] = {
                **latency_summary(samples),
                "matches": matches,
                "wrong_answers": wrong,
            }
    finally:
        assoc.release()
    return results


def _dcmtk_retrieve(tool: str, calling: str, archive: RunningArchive, *options: str) -> Any:
    """Run getscu or movescu for one study (Study Root, STUDY level) against the archive."""
    return subprocess.run(
        [tool, "-S", "-aet", calling, "-aec", archive.aet, *options,
         "127.0.0.1", str(archive.dimse_port)],
        capture_output=True,
        check=False,
        env=DCMTK_ENV,
    )  # fmt: skip


def _study(study_uid: str) -> list[str]:
    return ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]


def c_get(archive: RunningArchive, study_uid: str, scratch: Path, expected: int) -> dict[str, Any]:
    out = scratch / f"get-{archive.name}"
    out.mkdir()
    started = time.perf_counter()
    done = _dcmtk_retrieve("getscu", "BENCHGET", archive, "-od", str(out), *_study(study_uid))
    return _received("C-GET", archive, out, done, time.perf_counter() - started, expected)


def c_move(archive: RunningArchive, study_uid: str, scratch: Path, expected: int) -> dict[str, Any]:
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
            orthanc.declare_modality(archive, "BENCHDEST", port)
        else:
            httpx.put(
                f"{archive.base_url}/api/remote-aes/BENCHDEST",
                json={"host": "127.0.0.1", "port": port},
            ).raise_for_status()
        time.sleep(0.3)
        started = time.perf_counter()
        done = _dcmtk_retrieve(
            "movescu", "BENCHMOVE", archive, "-aem", "BENCHDEST", *_study(study_uid)
        )
        seconds = time.perf_counter() - started
    finally:
        storescp.terminate()
        storescp.wait(timeout=30)
    return _received("C-MOVE", archive, out, done, seconds, expected)


def _received(
    verb: str,
    archive: RunningArchive,
    out: Path,
    done: subprocess.CompletedProcess[bytes],
    seconds: float,
    expected: int,
) -> dict[str, Any]:
    """Count (then remove) the files a retrieve wrote; say so when some are missing."""
    received = len(list(out.iterdir()))
    shutil.rmtree(out)
    if done.returncode != 0 or received != expected:
        say(f"{verb} from {archive.name}: {received}/{expected} ({done.stderr[-300:]!r})")
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
    keys = {
        "patient_id": {"PatientID": probe.patient_id},
        "patient_name_wildcard": {"PatientName": probe.patient_name.split("^")[0][:3] + "*"},
        "study_date_range": {"StudyDate": f"{probe.study_date}-{probe.study_date}"},
    }
    shapes: dict[str, list[FindQuery]] = {
        shape: [(k, None)] * args.queries for shape, k in keys.items()
    }
    ct_study = next(ct_instances(CtSeriesSpec(studies=1, slices=1, kind=3))).study_uid

    report: dict[str, Any] = {"args": vars(args), "shapes": keys, "archives": {}}
    with tempfile.TemporaryDirectory(prefix="bench-qr-") as tmp:
        workdir = Path(tmp)
        starters = [start_hounsfield] + ([] if args.no_orthanc else [start_orthanc])
        for starter in starters:
            archive = starter(workdir)
            try:
                say(f"{archive.name}: loading {args.studies} studies and {args.slices} CT slices")
                stow(archive, population.instances(), 200)
                stow(archive, ct_instances(CtSeriesSpec(1, args.slices, kind=3)), 25)
                say(f"{archive.name}: C-FIND")
                found = c_find(archive, shapes)
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
