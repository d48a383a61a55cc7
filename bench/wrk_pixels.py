"""Frames/s and rendered/s with `wrk` as the client: the server's capacity, not Python's.

    python -m bench.wrk_pixels [--seconds 10] [--connections 8] [--instances 160] [--no-orthanc]

bench/pixels.py drives the archives from Python threads, which on a 2-core machine spend
as much CPU as the server: its figures are a floor. This repeats its three request kinds
(frame as stored, frame as native little endian, rendered JPEG) for uncompressed and HTJ2K
slices with `wrk` (Debian's package; C, event loop), cycling over every instance's URL with a
Lua script, at `--connections` concurrent connections on 2 threads. Same server settings as
bench/pixels.py (2 HTTP workers, no rendered-output cache, no HTJ2K copies). Non-2xx answers
are counted and reported. Results go to bench/results/wrk-pixels-*.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import hounsfield as hounsfield_server
from bench import orthanc
from bench.data import CtSeriesSpec, ct_instances
from bench.pixels import encoded, instance_urls, stow
from bench.servers import RunningArchive

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = {
    "frames_as_stored": (
        "/frames/1",
        'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    ),
    "frames_native": ("/frames/1", 'multipart/related; type="application/octet-stream"'),
    "rendered_jpeg": ("/rendered", "image/jpeg"),
}
HTJ2K = "1.2.840.10008.1.2.4.202"
#: As bench/pixels.py: every request decodes (no rendered-output cache, no HTJ2K copies).
HOUNSFIELD_SETTINGS = {
    "HOUNSFIELD_HTTP_WORKERS": "2",
    "HOUNSFIELD_CACHE_URL": "none://",
    "HOUNSFIELD_HTJ2K_COPIES": "false",
}

_LUA = """
local urls = {}
for line in io.lines("%s") do urls[#urls + 1] = line end
local i = 0
request = function()
  i = i %% #urls + 1
  return wrk.format("GET", urls[i], {["Accept"] = "%s"})
end
"""


def run_wrk(
    urls: list[str], accept: str, seconds: int, connections: int, work: Path
) -> dict[str, Any]:
    paths = work / "urls.txt"
    paths.write_text("\n".join("/" + u.split("://", 1)[1].split("/", 1)[1] for u in urls) + "\n")
    script = work / "cycle.lua"
    script.write_text(_LUA % (paths, accept.replace('"', '\\"')))
    base = urls[0].split("/dicom-web")[0]
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests_per_second": float(rate.group(1)) if rate else None,
        "p50_ms": round(float(p50.group(1)) * scale[p50.group(2)], 2) if p50 else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def measure(
    archive: RunningArchive, sets: dict[str, list[Any]], args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, instances in sets.items():
        urls = instance_urls(archive, instances)
        for kind, (suffix, accept) in KINDS.items():
            figures = run_wrk(
                [u + suffix for u in urls], accept, args.seconds, args.connections, work
            )
            out[f"{name}/{kind}"] = figures
            print(f"[wrk] {archive.name:10} {name:12} {kind:17} {figures}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.wrk_pixels", description=__doc__.splitlines()[0]
    )
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--instances", type=int, default=160)
    p.add_argument("--no-orthanc", action="store_true")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    plain = list(ct_instances(CtSeriesSpec(studies=1, slices=args.instances, kind=5)))
    sets = {
        "uncompressed": plain,
        "htj2k": [
            encoded(i, HTJ2K)
            for i in ct_instances(CtSeriesSpec(studies=1, slices=args.instances, kind=6))
        ],
    }
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "archives": {},
    }
    with tempfile.TemporaryDirectory(prefix="hf-bench-wrk-") as scratch:
        work = Path(scratch)
        starters = [
            (
                "Hounsfield",
                lambda: hounsfield_server.start(work / "hf" / "data", settings=HOUNSFIELD_SETTINGS),
            )
        ]
        if not args.no_orthanc:
            starters.append(("Orthanc", lambda: orthanc.start(work / "orthanc")))
        for name, start in starters:
            archive = start()
            try:
                for instances in sets.values():
                    stow(archive, iter(instances))
                chosen = sets if name == "Hounsfield" else {"uncompressed": sets["uncompressed"]}
                results["archives"][name] = measure(archive, chosen, args, work)
            finally:
                archive.stop()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"wrk-pixels-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"[wrk] results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
