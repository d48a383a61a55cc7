"""`python -m bench.run`: Hounsfield against Orthanc, same machine, same data, same run.

    python -m bench.run                 # every scenario, default sizes (~25 minutes on 2 cores)
    python -m bench.run --smoke         # tiny sizes, checks that every figure is produced
    python -m bench.run --scale 100000  # adds QIDO at 100k studies / 1M instances (Hounsfield)
    python -m bench.run --profile       # adds a py-spy pass over a separate Hounsfield server
    python -m bench.run --only pixels   # some scenarios only (JSON only; docs/perf.md left alone)

Writes bench/results/<UTC time>.json, and (unless --smoke or --only) the generated block of
docs/perf.md and the chart docs/perf/ratios.png.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hounsfield
from bench import (
    data,
    dimse,
    figures,
    machine,
    memory,
    orthanc,
    pixels,
    profile,
    qr,
    report,
    scenarios,
)
from bench import fill as bulk
from bench import hounsfield as hf
from bench.figures import NON_DURABLE, STOW_BATCH
from bench.report import Report
from bench.scenarios import Problems
from bench.servers import RunningArchive

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Sizes:
    ct_studies: int
    ct_slices: int
    stow_batch: int
    query_studies: int
    series_per_study: int
    instances_per_series: int
    queries_per_shape: int
    metadata_repeats: int
    time_limit: float  # seconds per scenario per archive
    stow_rounds: int = 3
    cstore_count: int = 500  # CT instances per C-STORE round
    cstore_rounds: int = 3
    find_queries: int = 200  # C-FIND queries per shape
    mr_studies: int = 2
    mr_slices: int = 150  # 256² MR slices per study
    memory_gigabytes: float = 2.0

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            1,
            20,
            10,
            20,
            2,
            2,
            10,
            3,
            20,
            stow_rounds=1,
            cstore_count=20,
            cstore_rounds=1,
            find_queries=10,
            mr_studies=1,
            mr_slices=20,
            memory_gigabytes=0.05,
        )

    @classmethod
    def default(cls) -> Sizes:
        return cls(4, 300, STOW_BATCH, 2000, 2, 2, 200, 30, 300)


#: The scenarios in the order they run; the first group shares one server per archive. The MR
#: studies are stored after the QIDO-RS and C-FIND scenarios, whose expected counts (studies by
#: ModalitiesInStudy=MR among them) are those of the query set alone.
SHARED_SERVER_SCENARIOS = ("stow", "cstore", "metadata", "retrieve", "qido", "cfind", "stow_mr")
SCENARIOS = (*SHARED_SERVER_SCENARIOS, "pixels", "memory")
#: What a scenario reads that another one stores.
NEEDS = {"metadata": "stow", "retrieve": "stow", "cfind": "qido"}


def only(text: str) -> list[str]:
    """--only's comma-separated scenarios, with those they need, in the order they run."""
    asked = {name.strip() for name in text.split(",") if name.strip()}
    unknown = asked - set(SCENARIOS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}"
        )
    asked |= {NEEDS[name] for name in asked if name in NEEDS}
    return [name for name in SCENARIOS if name in asked]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes; only checks figures exist")
    p.add_argument("--scale", type=int, default=0, metavar="N", help="also QIDO at N studies")
    p.add_argument("--scale-instances", type=int, default=5, help="instances per series at scale")
    p.add_argument("--query-studies", type=int, help="studies in the QIDO set (default 2000)")
    p.add_argument("--ct-studies", type=int, help="CT studies of 300 slices to STOW (default 4)")
    p.add_argument(
        "--scale-dir",
        type=Path,
        help="keep the --scale fill here, and reuse it when a later run asks for the same sizes",
    )
    p.add_argument(
        "--only-scale",
        action="store_true",
        help="only the --scale scenario (JSON only; docs/perf.md is left alone)",
    )
    p.add_argument(
        "--only",
        type=only,
        metavar="A,B",
        help=f"only these scenarios (JSON only): {', '.join(SCENARIOS)}",
    )
    p.add_argument(
        "--pixel-seconds", type=int, help="seconds per pixel request kind and archive (10)"
    )
    p.add_argument("--gigabytes", type=float, help="size of the memory scenario's study (2)")
    p.add_argument("--profile", action="store_true", help="extra py-spy pass on Hounsfield")
    p.add_argument("--no-orthanc", action="store_true", help="Hounsfield only (no ratios)")
    p.add_argument("--results-dir", type=Path, help="where the JSON goes (default bench/results)")
    p.add_argument("--perf-md", type=Path, default=ROOT / "docs" / "perf.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directories")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="wait up to S seconds for the machine to be idle before each scenario",
    )
    return p.parse_args(argv)


def say(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def ct_bodies(sizes: Sizes, kind: int = data.CT_KIND) -> list[tuple[bytes, int]]:
    spec = data.CtSeriesSpec(studies=sizes.ct_studies, slices=sizes.ct_slices, kind=kind)
    return [
        (data.multipart_body([i.data for i in batch]), len(batch))
        for batch in data.batched(data.ct_instances(spec), sizes.stow_batch)
    ]


def tiny_bodies(archive: data.TinyArchive, batch: int) -> list[tuple[bytes, int]]:
    return [
        (data.multipart_body([i.data for i in group]), len(group))
        for group in data.batched(archive.instances(), batch)
    ]


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.sizes = Sizes.smoke() if args.smoke else Sizes.default()
        if args.query_studies:
            self.sizes.query_studies = args.query_studies
        if args.ct_studies:
            self.sizes.ct_studies = args.ct_studies
        if args.gigabytes:
            self.sizes.memory_gigabytes = args.gigabytes
        self.pixel_sizes = pixels.PixelSizes.smoke() if args.smoke else pixels.PixelSizes.default()
        if args.pixel_seconds:
            self.pixel_sizes.seconds = args.pixel_seconds
        self.problems = Problems()
        self.details: dict[str, Any] = {
            "sizes": self.sizes.__dict__,
            "pixel_sizes": self.pixel_sizes.__dict__,
        }
        self.archives: dict[str, RunningArchive] = {}
        self.archive_info: dict[str, dict[str, Any]] = {}
        self.busy: dict[str, float] = {}
        self.others: dict[str, float] = {}
        self.query_set: data.TinyArchive | None = None  # loaded by qido, queried by cfind

    def measured(self, scenario: str, work: Callable[[], None]) -> None:
        """Run a scenario, recording how busy the machine was before and, by others, during."""
        self.quiet(scenario)
        meter = machine.CpuMeter()
        work()
        self.others[scenario] = round(meter.others(), 2)
        if self.others[scenario] > 0.15:
            say(f"warning: other processes used {self.others[scenario]:.0%} of the cores")

    def guarded(self, scenario: str, work: Callable[[], None]) -> Callable[[], None]:
        """`work`, with an exception recorded as a problem: the run goes on to the next
        scenario, and the figures it did not produce are reported missing."""

        def run() -> None:
            try:
                work()
            except Exception as exc:  # any failure of a scenario is reported
                self.problems.add("bench", f"{scenario} stopped: {type(exc).__name__}: {exc}")
                say(f"{scenario} stopped: {type(exc).__name__}: {exc}")

        return run

    def quiet(self, scenario: str) -> None:
        """Record how busy the machine was (by others) just before a scenario."""
        if self.args.wait_quiet:
            busy = machine.wait_quiet(self.args.wait_quiet, say=say)
        else:
            busy = machine.cpu_busy(1.0)
        self.busy[scenario] = round(busy, 2)
        if busy > 0.15:
            say(f"warning: the machine is {busy:.0%} busy before {scenario}: figures skewed")

    # -- servers -------------------------------------------------------------------------

    def start_servers(self) -> None:
        say("starting Hounsfield (durable, the default)")
        self._register(hf.start(self.workdir / "hounsfield"))
        if self.args.no_orthanc:
            return
        install_log: list[str] = []
        orthanc.ensure_installed(install_log)
        say("starting Orthanc")
        started = orthanc.start(self.workdir / "orthanc")
        started.notes += install_log
        for aet in qr.CLIENT_AETS:
            orthanc.declare_modality(started, aet)
        self._register(started)

    def _note(self, note: str) -> None:
        info = self.archive_info.setdefault("Hounsfield", {"version": hounsfield.__version__})
        info.setdefault("notes", []).append(note)

    def _register(self, archive: RunningArchive) -> None:
        self.archives[archive.name] = archive
        self.archive_info[archive.name] = {"version": archive.version, "notes": archive.notes}

    def stop_servers(self) -> None:
        for archive in self.archives.values():
            self.archive_info[archive.name]["rss_mb_at_end"] = archive.rss_mb()
            archive.stop()

    # -- scenarios -----------------------------------------------------------------------

    def stow(self) -> None:
        """STOW-RS of 512² CT in rounds; each round has its own data set, and the archives
        take turns in a rotating order, so a slow moment of the shared disk does not land on
        one archive only. The figure is the median round."""
        sizes = self.sizes
        warmup = ct_bodies(
            Sizes(1, sizes.stow_batch, sizes.stow_batch, 0, 0, 0, 0, 0, 0), data.WARMUP_KIND
        )
        targets = dict(self.archives)
        fast: RunningArchive | None = None
        if not self.args.smoke:
            fast = hf.start(self.workdir / "hounsfield-nondurable", durable=False)
            targets[NON_DURABLE] = fast
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        try:
            for number, kind in enumerate(data.CT_ROUND_KINDS[: sizes.stow_rounds]):
                say(f"round {number + 1}: generating {sizes.ct_studies}×{sizes.ct_slices} CT")
                bodies = ct_bodies(sizes, kind)
                size_mb = sum(len(b) for b, _ in bodies) / 1e6
                names = list(targets)
                order = names[number % len(names) :] + names[: number % len(names)]
                for name in order:
                    result = scenarios.stow_bodies(
                        name,
                        targets[name].dicomweb,
                        bodies,
                        self.problems,
                        sizes.time_limit,
                        warmup=warmup if number == 0 else (),
                    )
                    rounds[name].append({**result.__dict__, "rate": result.rate})
                    say(f"  {name}: {result.rate:.0f} inst/s ({size_mb:.0f} MB)")
        finally:
            if fast is not None:
                fast.stop()
        results: dict[str, Any] = {}
        for name, runs in rounds.items():
            rates = sorted(r["rate"] for r in runs)
            results[name] = {
                "rate": statistics.median(rates),
                "rates": [round(r["rate"], 1) for r in runs],
                "rounds": runs,
                "rss_mb": targets[name].rss_mb() if name in self.archives else None,
            }
        self.details["stow"] = results

    def stow_mr(self) -> None:
        """STOW-RS of 256² MR, one round: the archives' cost per instance at a quarter of a
        CT slice's size (more headers, index rows and fsyncs per byte)."""
        sizes = self.sizes
        spec = data.MrSeriesSpec(studies=sizes.mr_studies, slices=sizes.mr_slices)
        say(f"generating {sizes.mr_studies}×{sizes.mr_slices} MR (256²)")
        bodies = [
            (data.multipart_body([i.data for i in batch]), len(batch))
            for batch in data.batched(data.mr_instances(spec), sizes.stow_batch)
        ]
        results: dict[str, Any] = {}
        for name, archive in self.archives.items():
            result = scenarios.stow_bodies(
                name, archive.dicomweb, bodies, self.problems, sizes.time_limit
            )
            results[name] = {**result.__dict__, "rate": result.rate}
            say(f"  {name}: {result.rate:.0f} inst/s")
        self.details["stow_mr"] = results

    def pixels(self) -> None:
        """Frames/s, rendered/s and a viewer opening a study, on servers of their own."""
        self._note(
            "pixel scenarios: a server of their own with 2 HTTP workers, no rendered-output cache"
            " and no HTJ2K copies, so that every request renders (decoded frames may come from the"
            " decoded-frame cache)"
        )
        self.details["pixels"] = pixels.scenario(
            self.workdir,
            self.pixel_sizes,
            self.problems,
            say,
            with_orthanc=not self.args.no_orthanc,
        )

    def memory(self) -> None:
        """Server RSS while a 2 GB study is ingested, on servers of their own."""
        self._note("memory scenario: a server of its own with the defaults")
        self.details["memory"] = memory.scenario(
            self.workdir,
            self.sizes.memory_gigabytes,
            STOW_BATCH,
            self.problems,
            say,
            with_orthanc=not self.args.no_orthanc,
        )

    def cstore(self) -> None:
        say(f"C-STORE of {self.sizes.cstore_count} CT instances on 1 and 4 associations")
        self.details["cstore"] = dimse.cstore(
            self.archives, self.sizes.cstore_count, self.sizes.cstore_rounds, self.problems, say
        )

    def retrieve(self) -> None:
        say(f"C-GET and C-MOVE of the {self.sizes.ct_slices}-slice CT study")
        self.details["retrieve"] = dimse.retrieve(
            self.archives,
            data.study_uid(data.CT_KIND, 0),
            self.sizes.ct_slices,
            self.workdir,
            self.problems,
        )

    def metadata(self) -> None:
        study = data.study_uid(data.CT_KIND, 0)
        series = data.series_uid(data.CT_KIND, 0, 0)
        out: dict[str, Any] = {}
        for name, archive in self.archives.items():
            for encoding in ("identity", "gzip"):
                say(f"series metadata ({self.sizes.ct_slices} instances, {encoding}) on {name}")
                out[f"{name}/{encoding}"] = scenarios.series_metadata(
                    name,
                    archive.dicomweb,
                    study,
                    series,
                    self.sizes.ct_slices,
                    self.problems,
                    self.sizes.metadata_repeats,
                    self.sizes.time_limit,
                    encoding=encoding,
                )
                say(f"  p50 {out[f'{name}/{encoding}']['p50_ms']:.1f} ms")
        self.details["metadata"] = out

    def qido(self) -> None:
        sizes = self.sizes
        spec = data.TinyArchiveSpec(
            studies=sizes.query_studies,
            series_per_study=sizes.series_per_study,
            instances_per_series=sizes.instances_per_series,
        )
        query_set = data.tiny_archive(spec)
        bodies = tiny_bodies(query_set, STOW_BATCH)
        total = sum(n for _, n in bodies)
        loads: dict[str, Any] = {}
        latencies: dict[str, Any] = {}
        shapes = scenarios.query_shapes(query_set, sizes.queries_per_shape)
        for name, archive in self.archives.items():
            say(f"loading {sizes.query_studies} studies ({total} tiny instances) into {name}")
            load = scenarios.stow_bodies(
                name, archive.dicomweb, bodies, self.problems, time_limit=3600
            )
            loads[name] = {**load.__dict__, "rate": load.rate}
            say(f"  {load.rate:.0f} inst/s; running {len(shapes)} query shapes")
            latencies[name] = scenarios.run_queries(
                name, archive.dicomweb, shapes, self.problems, time_limit=sizes.time_limit / 10
            )
        self.details["qido_load"] = loads
        self.details["qido"] = {"studies": sizes.query_studies, "instances": total, **latencies}
        self.details["qido_labels"] = {s.key: s.label for s in shapes}
        self.query_set = query_set

    def cfind(self) -> None:
        if self.query_set is None:
            return
        say(f"C-FIND, {self.sizes.find_queries} queries per shape")
        self.details["cfind"] = dimse.cfind(
            self.archives, self.query_set, self.sizes.find_queries, self.problems
        )

    def qido_at_scale(self, studies: int) -> None:
        spec = data.TinyArchiveSpec(
            studies=studies, series_per_study=2, instances_per_series=self.args.scale_instances
        )
        query_set = data.tiny_archive(spec)
        data_dir = self.args.scale_dir or self.workdir / "hounsfield-scale"
        total = studies * 2 * self.args.scale_instances
        marker = data_dir / f"bench-filled-{studies}x{2 * self.args.scale_instances}"
        if marker.exists():  # --scale-dir of an earlier run with the same sizes
            stored, seconds = total, 0.0
            say(f"reusing the filled directory {data_dir} ({total} instances)")
        else:
            say(f"bulk fill of Hounsfield: {studies} studies, {total} instances (ingest service)")
            last = [0.0]

            def progress(done: int, seconds: float) -> None:
                if seconds - last[0] > 30:
                    last[0] = seconds
                    say(f"  {done}/{total} ({done / seconds:.0f} inst/s)")

            stored, seconds = bulk.fill(data_dir, query_set, progress=progress)
            say(f"  filled {stored} in {seconds:.0f} s; flushing the page cache (sync)")
            synced = time.monotonic()
            os.sync()  # the fill ran without fsync: let write-back finish before measuring
            say(f"  synced in {time.monotonic() - synced:.0f} s")
            marker.touch()
        delivered = bulk.mark_events_delivered(data_dir)
        say(f"outbox relay advanced to event {delivered} (delivered long ago)")
        say("starting the server on the filled directory")
        self.details["qido_labels"] = {s.key: s.label for s in scenarios.query_shapes(query_set, 1)}
        server = hf.start(data_dir, label="Hounsfield (scale)")
        try:
            shapes = scenarios.query_shapes(query_set, self.sizes.queries_per_shape)
            latencies: dict[str, dict[str, float]] = {}

            def queries() -> None:
                latencies.update(
                    scenarios.run_queries(
                        "Hounsfield (scale)", server.dicomweb, shapes, self.problems, 60
                    )
                )

            self.measured("qido_scale", queries)
        finally:
            server.stop()
        if self.args.profile and profile.py_spy() is not None:
            say("  the same queries again, on the filled directory, under py-spy")
            raw = self.workdir / "profile-scale.txt"
            server = hf.start(data_dir, label="profile", profile_to=raw)
            try:
                scenarios.run_queries("profile", server.dicomweb, shapes, Problems(), 20)
            finally:
                server.stop()
            if raw.exists():
                self.details["profile_scale"] = profile.summarise(raw)
            else:
                self.problems.add("bench", f"py-spy wrote no profile; see {server.log_path}")
        self.details["qido_scale"] = {
            "studies": studies,
            "instances": stored,
            "fill_seconds": seconds,
            "fill_rate": stored / seconds if seconds else None,
            "Hounsfield": latencies,
        }

    def profile_pass(self) -> None:
        """The scenarios again, on a Hounsfield server run under py-spy (figures not used)."""
        if profile.py_spy() is None:
            self.problems.add("bench", "py-spy not installed: no profile")
            return
        raw = self.workdir / "profile.txt"
        say("profile pass: STOW-RS, series metadata and queries on Hounsfield under py-spy")
        server = hf.start(self.workdir / "hounsfield-profile", profile_to=raw)
        ignored = Problems()
        try:
            scenarios.stow_bodies("profile", server.dicomweb, ct_bodies(self.sizes), ignored, 300)
            scenarios.series_metadata(
                "profile",
                server.dicomweb,
                data.study_uid(data.CT_KIND, 0),
                data.series_uid(data.CT_KIND, 0, 0),
                self.sizes.ct_slices,
                ignored,
                repeats=100,
                time_limit=60,
            )
            spec = data.TinyArchiveSpec(studies=self.sizes.query_studies)
            query_set = data.tiny_archive(spec)
            scenarios.stow_bodies(
                "profile", server.dicomweb, tiny_bodies(query_set, STOW_BATCH), ignored, 600
            )
            shapes = scenarios.query_shapes(query_set, self.sizes.queries_per_shape)
            scenarios.run_queries("profile", server.dicomweb, shapes, ignored, time_limit=30)
        finally:
            server.stop()
        if raw.exists():
            self.details["profile"] = profile.summarise(raw)
            raw.unlink()  # raw stacks are large; the summary is kept in the JSON
        else:
            self.problems.add("bench", f"py-spy wrote no profile; see {server.log_path}")

    # -- figures ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    results_dir = args.results_dir or (
        Path(tempfile.mkdtemp(prefix="hf-bench-results-"))
        if args.smoke
        else ROOT / "bench" / "results"
    )
    workdir = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    bench = Bench(args, workdir)
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    out = Report(
        started_at=started.strftime("%Y-%m-%d %H:%M"),
        command=command.strip(),
        machine=report.machine(),
        smoke=args.smoke,
    )
    t0 = time.monotonic()
    chosen = [] if args.only_scale else (args.only or list(SCENARIOS))
    partial = args.only_scale or args.only is not None
    if not args.only_scale:
        shared = [name for name in chosen if name in SHARED_SERVER_SCENARIOS]
        try:
            if shared:
                bench.start_servers()
            for name in shared:
                bench.measured(name, getattr(bench, name))
        finally:
            bench.stop_servers()
        if not args.no_orthanc and not shared and chosen:
            orthanc.ensure_installed([])
        for name in ("pixels", "memory"):  # fresh servers each, after the shared ones stopped
            if name in chosen:
                bench.measured(name, bench.guarded(name, getattr(bench, name)))
        if args.profile:  # before the bulk fill, whose write-back would slow every fsync
            bench.profile_pass()
    if args.scale:
        bench.qido_at_scale(args.scale)
    out.archives = bench.archive_info
    out.rows = figures.rows(bench.details, partial=partial)
    out.details = {**bench.details, "wall_seconds": round(time.monotonic() - t0, 1)}
    out.machine["busy_before"] = bench.busy
    out.machine["others_during"] = bench.others
    out.problems = bench.problems.items
    out.finished_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    path = report.write_json(out, results_dir, stamp)
    say(f"results: {path}")
    if not args.smoke and not partial:  # a partial run leaves docs/perf.md alone
        chart_path = args.perf_md.parent / "perf" / "ratios.png"
        has_chart = report.chart(out, chart_path)
        rel = chart_path.relative_to(args.perf_md.parent).as_posix() if has_chart else None
        report.update_perf_md(args.perf_md, report.markdown(out, rel))
        say(f"updated {args.perf_md}" + (f" and {chart_path}" if has_chart else ""))
    print(report.markdown(out, None), flush=True)
    if not args.keep:  # last: a million files take minutes to delete
        shutil.rmtree(workdir, ignore_errors=True)
    return _check(out, expect_orthanc=not (args.no_orthanc or args.only_scale))


def _check(out: Report, *, expect_orthanc: bool) -> int:
    """Every figure was produced (the smoke test's assertion); problems are reported, not fatal."""
    missing = [r.key for r in out.rows if r.hounsfield is None]
    if expect_orthanc:
        missing += [
            f"{r.key} (Orthanc)"
            for r in out.rows
            if r.orthanc is None and not r.note and not r.orthanc_failure
        ]
    if missing:
        say(f"missing figures: {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
