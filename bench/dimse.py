"""DIMSE scenarios of `bench.run`: C-STORE ingest, C-FIND latency, C-GET and C-MOVE throughput.

Both archives get the same objects from the same clients in the same run, so the client's cost
is in both figures and the ratio is what stays meaningful on a shared machine (DESIGN.md §5):

- C-STORE (PS3.4 B.2): `bench.cstore`'s raw SCU (blocking sockets, TCP_NODELAY, PDUs of the
  receiver's Maximum Length, waits for each C-STORE-RSP) on one and on four associations, each
  round with a fresh CT series held in memory, the archives in rotating order; the figure is the
  median round. Every response must be Success and the archive must then list every instance.
- C-FIND (PS3.4 C.4.1), Study Root, STUDY level, on one association: studies by PatientID and
  by a one-month StudyDate range over the QIDO-RS query set, every answer's match count checked.
- C-GET (PS3.4 C.4.3) with DCMTK getscu and C-MOVE (PS3.4 C.4.2) with movescu to a storescp, of
  the CT study the STOW-RS scenario stored.

`python -m bench.dimse [--count 500] [--rounds 7] [--dimse-workers 1,2]` runs the C-STORE
scenario alone, with more rounds than `bench.run` gives it, on fresh archives; JSON in
bench/results/cstore-<UTC time>.json. With several `--dimse-workers` values, one Hounsfield per
value (the dimse_workers setting) takes its turn in the same rotation as Orthanc.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import hounsfield as hounsfield_server
from bench import machine, orthanc, qr, report
from bench.cstore import send_raw, split_part10
from bench.data import CtSeriesSpec, TinyArchive, ct_instances
from bench.report import Row, Target, latency_row
from bench.scenarios import Problems, _month_end
from bench.servers import RunningArchive

CSTORE_KIND = 8  # data sets (UID arcs) of their own; bench.data's kinds are single digits
WARMUP_KIND = 9
ASSOCIATIONS = (1, 4)
CSTORE_TARGET = Target("≥ 350 inst/s, ≥ 3× Orthanc", at_least=350, min_ratio=3)


def cstore(
    archives: dict[str, RunningArchive],
    count: int,
    rounds: int,
    problems: Problems,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """instances/s per archive and association count; median of `rounds` rounds, after a
    warm-up association of 10 instances per archive."""
    warmup = [split_part10(i.data) for i in ct_instances(CtSeriesSpec(1, 10, kind=WARMUP_KIND))]
    for name, archive in archives.items():
        try:
            send_raw(warmup, archive.dimse_port, called_aet=archive.aet)
        except (AssertionError, OSError) as exc:
            problems.add(name, f"C-STORE warm-up: {exc!r}")
    spec = CtSeriesSpec(studies=rounds * len(ASSOCIATIONS), slices=count, kind=CSTORE_KIND)
    generated = ct_instances(spec)
    names = list(archives)
    rates: dict[str, dict[str, list[float]]] = {
        str(n): {name: [] for name in names} for n in ASSOCIATIONS
    }
    turn = 0
    for number in range(rounds):
        for associations in ASSOCIATIONS:
            instances = [next(generated) for _ in range(count)]
            study, series = instances[0].study_uid, instances[0].series_uid
            objects = [split_part10(i.data) for i in instances]
            del instances
            order = names[turn % len(names) :] + names[: turn % len(names)]
            turn += 1
            for name in order:
                archive = archives[name]
                try:
                    seconds = send_raw(
                        objects,
                        archive.dimse_port,
                        associations=associations,
                        called_aet=archive.aet,
                    )
                except (AssertionError, OSError) as exc:
                    problems.add(name, f"C-STORE on {associations} association(s): {exc!r}")
                    continue
                stored = _count_instances(archive, study, series)
                if stored != count:
                    problems.add(name, f"C-STORE: {stored} of {count} instances listed after")
                rate = count / seconds
                rates[str(associations)][name].append(rate)
                say(f"  round {number + 1}, {associations} association(s), {name}: {rate:.0f}")
    return {
        key: {
            name: {
                "rate": statistics.median(values) if values else None,
                "rates": [round(v, 1) for v in values],
            }
            for name, values in per_archive.items()
        }
        for key, per_archive in rates.items()
    } | {"instances_per_round": count, "rounds": rounds}


def _count_instances(archive: RunningArchive, study: str, series: str) -> int:
    response = httpx.get(
        f"{archive.dicomweb}/studies/{study}/series/{series}/instances",
        headers={"Accept": "application/dicom+json"},
        timeout=120,
    )
    if response.status_code == 204:
        return 0
    response.raise_for_status()
    return len(response.json())


def find_shapes(query_set: TinyArchive, per_shape: int, seed: int = 13) -> dict[str, Any]:
    """Study-level identifiers with values that exist in the query set, and their counts."""
    rng = random.Random(seed)
    studies = query_set.studies
    by_patient: dict[str, int] = {}
    by_month: dict[str, int] = {}
    for s in studies:
        by_patient[s.patient_id] = by_patient.get(s.patient_id, 0) + 1
        by_month[s.study_date[:6]] = by_month.get(s.study_date[:6], 0) + 1
    months = sorted(by_month)
    patients = [rng.choice(studies).patient_id for _ in range(per_shape)]
    chosen = [rng.choice(months) for _ in range(per_shape)]
    return {
        "patient_id": [({"PatientID": p}, by_patient[p]) for p in patients],
        "study_date_range": [
            ({"StudyDate": f"{m}01-{m}{_month_end(m)}"}, by_month[m]) for m in chosen
        ],
    }


def cfind(
    archives: dict[str, RunningArchive],
    query_set: TinyArchive,
    per_shape: int,
    problems: Problems,
) -> dict[str, Any]:
    shapes = find_shapes(query_set, per_shape)
    out: dict[str, Any] = {"studies": len(query_set.studies)}
    for name, archive in archives.items():
        try:
            out[name] = qr.c_find(archive, shapes)
        except RuntimeError as exc:
            problems.add(name, f"C-FIND: {exc}")
            continue
        for shape, summary in out[name].items():
            if summary["wrong_answers"]:
                problems.add(name, f"C-FIND {shape}: {summary['wrong_answers']} wrong answers")
    return out


def retrieve(
    archives: dict[str, RunningArchive],
    study_uid: str,
    expected: int,
    scratch: Path,
    problems: Problems,
) -> dict[str, Any]:
    """C-GET then C-MOVE of one study from each archive; instances/s and instances received."""
    out: dict[str, Any] = {"instances": expected}
    for name, archive in archives.items():
        got = qr.c_get(archive, study_uid, scratch, expected)
        time.sleep(0.5)  # let the archive close the previous association's files
        moved = qr.c_move(archive, study_uid, scratch, expected)
        for verb, result in (("C-GET", got), ("C-MOVE", moved)):
            if result["instances"] != expected:
                problems.add(name, f"{verb}: {result['instances']} of {expected} instances")
        out[name] = {"c_get": got, "c_move": moved}
    return out


def rows(details: dict[str, Any], ct_slices: int) -> list[Row]:
    """The report rows of whatever DIMSE scenarios ran."""
    out: list[Row] = []
    store = details.get("cstore")
    if store:
        n, rounds = store["instances_per_round"], store["rounds"]
        for associations in ASSOCIATIONS:
            per = store[str(associations)]
            plural = "association" if associations == 1 else "associations"
            out.append(
                Row(
                    f"cstore_{associations}",
                    f"C-STORE ingest, 512² CT, {associations} {plural} (raw SCU), {n} per round,"
                    " durable" + (f", median of {rounds} rounds" if rounds > 1 else ""),
                    "inst/s",
                    "higher",
                    per.get("Hounsfield", {}).get("rate"),
                    per.get("Orthanc", {}).get("rate"),
                    CSTORE_TARGET if associations == 1 else None,
                )
            )
    find: dict[str, Any] = details.get("cfind") or {}
    labels = {
        "patient_id": "studies by PatientID",
        "study_date_range": "studies by StudyDate range (one month)",
    }
    for key, label in labels.items() if find else []:
        out.append(
            latency_row(
                f"cfind_{key}",
                f"C-FIND {label}, {find['studies']:,} studies",
                find.get("Hounsfield", {}).get(key),
                find.get("Orthanc", {}).get(key),
                None,
            )
        )
    moved: dict[str, Any] = details.get("retrieve") or {}
    verbs = {
        "c_get": f"C-GET of a {ct_slices}-slice 512² CT study (getscu, one association)",
        "c_move": f"C-MOVE of a {ct_slices}-slice 512² CT study to storescp (movescu)",
    }
    for key, label in verbs.items() if moved else []:
        out.append(
            Row(
                key.replace("_", ""),
                label,
                "inst/s",
                "higher",
                moved.get("Hounsfield", {}).get(key, {}).get("per_second"),
                moved.get("Orthanc", {}).get(key, {}).get("per_second"),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="C-STORE ingest, Hounsfield and Orthanc")
    parser.add_argument("--count", type=int, default=500, help="CT instances per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--dimse-workers", default="1", help="comma-separated dimse_workers values of Hounsfield"
    )
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.dimse_workers.split(",")]

    def label(n: int) -> str:
        return "Hounsfield" if n == 1 else f"Hounsfield dimse_workers={n}"

    def say(message: str) -> None:
        print(f"[bench.dimse {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)

    started = datetime.now(UTC)
    problems = Problems()
    with tempfile.TemporaryDirectory(prefix="hf-bench-cstore-") as tmp:
        archives: dict[str, RunningArchive] = {}
        try:
            for n in workers:
                archives[label(n)] = hounsfield_server.start(
                    Path(tmp) / f"hounsfield-{n}",
                    label=label(n),
                    settings={"HOUNSFIELD_DIMSE_WORKERS": str(n)} if n != 1 else None,
                )
            orthanc.ensure_installed([])
            archives["Orthanc"] = orthanc.start(Path(tmp) / "orthanc")
            meter = machine.CpuMeter()
            result = cstore(archives, args.count, args.rounds, problems, say)
            result["others_during"] = round(meter.others(), 2)
        finally:
            for archive in archives.values():
                archive.stop()
    out = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": report.machine(),
        "cstore": result,
        "problems": problems.items,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"cstore-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    for associations in ASSOCIATIONS:
        per = result[str(associations)]
        o = per["Orthanc"]["rate"]
        for name in map(label, workers):
            h = per[name]["rate"]
            say(
                f"{associations} association(s): {name} {h:.0f} {per[name]['rates']},"
                f" Orthanc {o:.0f} {per['Orthanc']['rates']}, ratio {h / o:.2f}"
            )
    say(f"results: {path}; problems: {problems.items or 'none'}")
    return 1 if problems.items else 0


if __name__ == "__main__":
    sys.exit(main())
