"""How the SQLite index answers the common QIDO shapes at scale (DESIGN.md §4 and §5).

    python -m bench.index_scale                 # 100k studies, ~1M instances
    python -m bench.index_scale --studies 10000 --path /tmp/index.db --keep

Fills an index with synthetic studies (1 to 4 series, ~10 instances per study, ~2.5 studies
per patient, ten years of dates, a realistic modality mix) through `commit` in batches, then
times each query shape through `SqliteIndex.query` (SQL pre-filter + reference matcher, as
the services call it) and prints p50/p95 in milliseconds with the SQLite query plan.
This is a measurement, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.scenarios import in_threads
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.adapters.index.sqlite.read import candidate_statements
from hounsfield.domain.levels import split_by_level
from hounsfield.domain.model import DicomJson, Level, PixelLayout
from hounsfield.domain.query import MatchKey, Query, Range, SingleValue, Wildcard
from hounsfield.ports.index import BeginOutcome, IndexStore, NewInstance, QueryPage

FAMILY = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
    "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
    "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT",
    "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL",
    "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS", "MULLER", "SCHMIDT", "SCHNEIDER",
    "FISCHER", "WEBER", "MEYER", "WAGNER", "BECKER", "SCHULZ", "HOFFMANN", "DUPONT", "DURAND",
    "LEROY", "MOREAU", "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "ROSSI", "RUSSO", "FERRARI",
    "ESPOSITO", "BIANCHI", "ROMANO", "COLOMBO", "RICCI", "MARINO", "GRECO", "BRUNO", "GALLO",
]  # fmt: skip
GIVEN = ["JOHN", "MARY", "JAMES", "ANNA", "PETER", "LINDA", "PAUL", "SARA", "MARK", "EVA"]
MODALITIES = [("CT", 30), ("MR", 20), ("CR", 25), ("US", 10), ("MG", 5), ("PT", 5), ("NM", 5)]
ROOT = "1.2.826.0.1.3680043.10.1234.77"
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
FIRST_DAY = date(2016, 1, 1)


def _el(vr: str, *values: object) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


@dataclass
class Archive:
    patient_ids: list[str]
    names: list[str]
    study_uids: list[str]
    series: list[tuple[str, str]]  # (study, series)


def _patient(rng: random.Random, n: int) -> tuple[str, str]:
    name = f"{rng.choice(FAMILY)}{rng.randrange(100):02d}^{rng.choice(GIVEN)}"
    return f"PID{n:07d}", name


def generate(studies: int, seed: int = 7) -> tuple[Archive, Iterator[list[NewInstance]]]:
    """Synthetic studies as commit batches (one study per list); `Archive` keeps the keys."""
    rng = random.Random(seed)
    patients = [_patient(rng, n) for n in range(max(1, studies * 2 // 5))]
    archive = Archive([p[0] for p in patients], [p[1] for p in patients], [], [])
    kinds = [m for m, weight in MODALITIES for _ in range(weight)]
    received = datetime.now(UTC)
    layout = PixelLayout(4096, 524288, False, (((4096, 524288),),))

    def studies_iter() -> Iterator[list[NewInstance]]:
        for s in range(studies):
            pid, name = rng.choice(patients)
            study_uid = f"{ROOT}.{s + 1}"
            archive.study_uids.append(study_uid)
            day = FIRST_DAY + timedelta(days=rng.randrange(3650))
            base = {
                "00080005": _el("CS", "ISO_IR 100"),
                "00080020": _el("DA", day.strftime("%Y%m%d")),
                "00080030": _el("TM", f"{rng.randrange(24):02d}{rng.randrange(60):02d}00"),
                "00080050": _el("SH", f"ACC{s + 1:08d}"),
                "00080090": _el("PN", {"Alphabetic": "REF^DOCTOR"}),
                "00081030": _el("LO", "Synthetic study"),
                "00100010": _el("PN", {"Alphabetic": name}),
                "00100020": _el("LO", pid),
                "00100030": _el("DA", "19700101"),
                "00100040": _el("CS", rng.choice("MF")),
                "0020000D": _el("UI", study_uid),
                "00200010": _el("SH", str(s % 1000)),
            }
            batch: list[NewInstance] = []
            series_count = rng.randint(1, 4)
            for e in range(series_count):
                series_uid = f"{study_uid}.{e + 1}"
                archive.series.append((study_uid, series_uid))
                modality = rng.choice(kinds)
                for i in range(rng.randint(1, 20 // series_count - 1)):
                    sop = f"{series_uid}.{i + 1}"
                    data: DicomJson = {
                        **base,
                        "00080016": _el("UI", CT),
                        "00080018": _el("UI", sop),
                        "00080060": _el("CS", modality),
                        "0008103E": _el("LO", f"Series {e + 1}"),
                        "0020000E": _el("UI", series_uid),
                        "00200011": _el("IS", e + 1),
                        "00200013": _el("IS", i + 1),
                        "00280010": _el("US", 512),
                        "00280011": _el("US", 512),
                        "00280100": _el("US", 16),
                        "7FE00010": {"vr": "OW", "BulkDataURI": "bulkdata/7FE00010"},
                    }
                    patient, study, series, instance = split_by_level(data)
                    document = orjson.dumps(data)
                    batch.append(
                        NewInstance(
                            partition="default",
                            study_uid=study_uid,
                            series_uid=series_uid,
                            sop_uid=sop,
                            sop_class_uid=CT,
                            transfer_syntax_uid=EXPLICIT,
                            blob_key=f"default/{study_uid}/{series_uid}/{sop}",
                            size=528384,
                            sha256=hashlib.sha256(document).hexdigest(),
                            patient_attrs=patient,
                            study_attrs=study,
                            series_attrs=series,
                            instance_attrs=instance,
                            metadata=document,
                            pixel=layout,
                            bulk_ranges={"7FE00010": (4096, 524288)},
                            received_at=received,
                        )
                    )
            yield batch

    return archive, studies_iter()


def fill(index: IndexStore, studies: int, batch_instances: int) -> tuple[Archive, int, float]:
    """Bulk ingest: `commit` in batches of `batch_instances` (no `begin`, as a restore would)."""
    archive, batches = generate(studies)
    pending: list[NewInstance] = []
    count = 0
    started = time.perf_counter()
    for study in batches:
        pending.extend(study)
        if len(pending) >= batch_instances:
            index.commit(pending, [])
            count += len(pending)
            pending = []
            if count // batch_instances % 100 == 0:
                rate = count / (time.perf_counter() - started)
                print(f"  {count:>9,} instances, {rate:,.0f}/s", file=sys.stderr)
    if pending:
        index.commit(pending, [])
        count += len(pending)
    return archive, count, time.perf_counter() - started


def timed_fill(index: IndexStore, studies: int, batch: int) -> tuple[Archive, dict[str, object]]:
    """`fill`, and its figures for the report."""
    archive, count, seconds = fill(index, studies, batch)
    print(
        f"filled {count:,} instances in {seconds:,.1f} s ({count / seconds:,.0f}/s)",
        file=sys.stderr,
    )
    filled: dict[str, object] = {
        "instances": count,
        "batch": batch,
        "seconds": round(seconds, 1),
        "instances_per_s": round(count / seconds),
    }
    return archive, filled


def add_arguments(parser: argparse.ArgumentParser, studies: int) -> None:
    """The options both back ends' commands take."""
    parser.add_argument("--studies", type=int, default=studies)
    parser.add_argument("--batch", type=int, default=2_000, help="instances per commit")
    parser.add_argument("--repeat", type=int, default=300, help="queries per shape")
    parser.add_argument("--small-batch", type=int, default=32, help="instances per begin+commit")
    parser.add_argument("--small-studies", type=int, default=2_000, help="0: no small batches")
    parser.add_argument("--threads", type=int, default=4, help="threads for the small batches")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def small_batches(index: IndexStore, studies: int, batch: int, threads: int) -> dict[str, object]:
    """Ingest `studies` more studies with `begin` + `commit` in batches of `batch` instances
    from `threads` threads, as concurrent STOW-RS requests commit (the ingest service's path)."""
    _, generated = generate(studies, seed=99)
    # UIDs never stored before (the generator always uses one UID root): a run on a kept
    # index must ingest, not find duplicates
    prefix = f"9.{secrets.randbelow(10**9)}."
    instances = [
        dataclasses.replace(
            inst,
            study_uid=prefix + inst.study_uid,
            series_uid=prefix + inst.series_uid,
            sop_uid=prefix + inst.sop_uid,
        )
        for study in generated
        for inst in study
    ]
    chunks = [instances[at : at + batch] for at in range(0, len(instances), batch)]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop()
            outcomes = index.begin(chunk)
            if not all(o is BeginOutcome.NEW for o in outcomes):
                raise RuntimeError("not a fresh ingest: begin found stored instances")
            index.commit(chunk, [])

    seconds = in_threads([work] * threads)
    rate = len(instances) / seconds
    print(
        f"begin+commit in batches of {batch}, {threads} threads: {len(instances):,} instances"
        f" in {seconds:.1f} s, {rate:,.0f}/s",
        file=sys.stderr,
    )
    return {
        "instances": len(instances),
        "batch": batch,
        "threads": threads,
        "seconds": round(seconds, 1),
        "instances_per_s": round(rate),
    }


#: What `keys_of` reads: the values the query shapes draw from, in `Archive`'s field order.
KEY_STATEMENTS = (
    "SELECT patient_id FROM patients",
    "SELECT fold FROM patient_names",
    "SELECT study_uid FROM studies",
    "SELECT s.study_uid, se.series_uid FROM series se JOIN studies s ON s.pk = se.study_pk",
)


def keys_of(rows: Callable[[str], Iterable[Sequence[Any]]]) -> Archive:
    """The keys of an index filled by an earlier run (`--keep`), through `rows(sql)`."""
    patient_ids, names, studies, series = (list(rows(sql)) for sql in KEY_STATEMENTS)
    return Archive(
        [r[0] for r in patient_ids],
        [r[0] for r in names],
        [r[0] for r in studies],
        [(r[0], r[1]) for r in series],
    )


def stored_keys(index: SqliteIndex) -> Archive:
    conn = index._readers.get()  # a measurement script may look inside
    return keys_of(lambda sql: conn.execute(sql).fetchall())


def key(tag: str, vr: str, matcher: SingleValue | Wildcard | Range) -> MatchKey:
    return MatchKey(tag, vr, matcher)


def shapes(archive: Archive, rng: random.Random) -> dict[str, Callable[[], Query]]:
    def week() -> Range:
        start = FIRST_DAY + timedelta(days=rng.randrange(3640))
        end = start + timedelta(days=6)
        return Range(start.strftime("%Y%m%d"), end.strftime("%Y%m%d"))

    def study_series() -> Query:
        study = rng.choice(archive.study_uids)
        return Query(Level.SERIES, keys=(key("0020000D", "UI", SingleValue(study)),))

    def series_instances() -> Query:
        study, series = rng.choice(archive.series)
        return Query(
            Level.IMAGE,
            keys=(
                key("0020000D", "UI", SingleValue(study)),
                key("0020000E", "UI", SingleValue(series)),
            ),
        )

    page = 100
    return {
        "all studies (first page)": lambda: Query(Level.STUDY, limit=page),
        "PatientID": lambda: Query(
            Level.STUDY,
            keys=(key("00100020", "LO", SingleValue(rng.choice(archive.patient_ids))),),
            limit=page,
        ),
        "PatientName prefix (FAMILY*)": lambda: Query(
            Level.STUDY,
            keys=(key("00100010", "PN", Wildcard(rng.choice(FAMILY).lower() + "*")),),
            limit=page,
        ),
        "PatientName prefix (FAMILY4*)": lambda: Query(
            Level.STUDY,
            keys=(
                key("00100010", "PN", Wildcard(rng.choice(archive.names).split("^")[0][:-1] + "*")),
            ),
            limit=page,
        ),
        # one study in 16 (5 of the 80 families), like the HTTP scale bench's DOE*
        "PatientName prefix (B*)": lambda: Query(
            Level.STUDY, keys=(key("00100010", "PN", Wildcard("B*")),), limit=page
        ),
        "StudyDate one week": lambda: Query(
            Level.STUDY, keys=(key("00080020", "DA", week()),), limit=page
        ),
        "ModalitiesInStudy": lambda: Query(
            Level.STUDY,
            keys=(key("00080061", "CS", SingleValue(rng.choice(MODALITIES)[0])),),
            limit=page,
        ),
        "StudyDate week + ModalitiesInStudy": lambda: Query(
            Level.STUDY,
            keys=(
                key("00080020", "DA", week()),
                key("00080061", "CS", SingleValue(rng.choice(MODALITIES)[0])),
            ),
            limit=page,
        ),
        "StudyInstanceUID": lambda: Query(
            Level.STUDY,
            keys=(key("0020000D", "UI", SingleValue(rng.choice(archive.study_uids))),),
        ),
        "series of a study": study_series,
        "instances of a series": series_instances,
    }


def plan(index: SqliteIndex, query: Query) -> str:
    """SQLite's plan for the main candidate statement (what the index really does)."""
    sql, params = candidate_statements(query)[0]
    conn = index._readers.get()
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return "; ".join(str(r[3]) for r in rows)


def measure(
    run: Callable[[Query], QueryPage],
    explain: Callable[[Query], str],
    archive: Archive,
    repeat: int,
) -> list[dict[str, object]]:
    """p50/p95 of each shape through `run` (an index's `query`), with `explain`'s plan; the
    same loop, seed and shapes for every back end, so their figures compare directly."""
    rng = random.Random(11)
    results: list[dict[str, object]] = []
    for name, make in shapes(archive, rng).items():
        for _ in range(5):  # warm the caches for this shape
            run(make())
        timings: list[float] = []
        rows = 0
        for _ in range(repeat):
            query = make()
            started = time.perf_counter()
            page = run(query)
            timings.append((time.perf_counter() - started) * 1000)
            rows += len(page.rows)
        timings.sort()
        result = {
            "shape": name,
            "p50_ms": round(statistics.median(timings), 3),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 3),
            "mean_rows": round(rows / repeat, 1),
            "plan": explain(make()),
        }
        results.append(result)
        print(
            f"{name:<36} p50 {result['p50_ms']:>8.3f} ms  p95 {result['p95_ms']:>8.3f} ms"
            f"  rows {result['mean_rows']:>6}"
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser, studies=100_000)
    parser.add_argument("--path", type=Path, help="index file, made anew (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="reuse --path if it is filled")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        path = args.path or Path(scratch) / "index.db"
        reuse = args.keep and path.exists()
        if not reuse:  # a fresh index: filling an earlier one would re-store its instances
            for suffix in ("", "-wal", "-shm", "-journal"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        index = SqliteIndex(path, durable=True)
        try:
            index.migrate()
            if reuse:
                archive = stored_keys(index)
                print(f"reusing {path}", file=sys.stderr)
                filled: dict[str, object] = {"reused": True}
            else:
                archive, filled = timed_fill(index, args.studies, args.batch)
            [stats] = index.stats()
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            print(
                f"{stats.patients:,} patients, {stats.studies:,} studies, {stats.series:,} series,"
                f" {stats.instances:,} instances; {size / 2**20:,.0f} MiB on disk"
            )
            results = measure(index.query, lambda q: plan(index, q), archive, args.repeat)
            small = (
                small_batches(index, args.small_studies, args.small_batch, args.threads)
                if args.small_studies
                else {}
            )
            if args.json:
                counts = {
                    "patients": stats.patients,
                    "studies": stats.studies,
                    "series": stats.series,
                    "instances": stats.instances,
                    "bytes_on_disk": size,
                }
                report = {
                    "backend": "sqlite",
                    "fill": filled,
                    "small_batches": small,
                    "stats": counts,
                    "shapes": results,
                }
                args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        finally:
            index.close()


if __name__ == "__main__":
    main()
