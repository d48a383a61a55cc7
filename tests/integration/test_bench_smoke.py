"""The benchmark harness runs end to end against Orthanc and Hounsfield (`bench.run --smoke`):
every scenario of `make bench`, the pixel and memory ones included, at tiny sizes.

It checks that every figure is produced (Orthanc may "fail" a pixel scenario it cannot serve,
such as HTJ2K, and is reported so), and that Hounsfield answered every pixel request right; not
how fast anything is (timed assertions are flaky: the figures live in docs/perf.md as ratios).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench import orthanc

from tests.conftest import require_component, require_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_bench_smoke_produces_every_figure(tmp_path: Path) -> None:
    require_tool("Orthanc")
    require_component("the Orthanc DICOMweb plugin", orthanc.dicomweb_installed())

    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [results] = tmp_path.glob("*.json")
    report = json.loads(results.read_text())
    assert report["smoke"] is True
    keys = {row["key"] for row in report["rows"]}
    assert {
        "stow_ct",
        "stow_mr",
        "qido_patient_id",
        "qido_instances_of_series",
        "metadata_identity",
        "cstore_1",
        "cstore_4",
        "cfind_patient_id",
        "cfind_study_date_range",
        "cget",
        "cmove",
        "uncompressed_frames",
        "jpeg2000_frames",
        "htj2k_frames",
        "jpeg2000_frames_decoded",
        "htj2k_frames_decoded",
        "uncompressed_rendered",
        "jpeg2000_rendered",
        "htj2k_rendered",
        "multiframe_frames",
        "multiframe_rendered",
        "viewer_first_image",
        "viewer_whole_series",
        "viewer_whole_series_identity",
        "viewer_multiframe",
        "memory_rss_peak",
    } <= keys
    for row in report["rows"]:
        assert row["hounsfield"] is not None and row["hounsfield"] > 0, row
        if row["orthanc_failure"]:
            assert row["orthanc"] is None and row["ratio"] is None, row
        else:
            assert row["orthanc"] is not None and row["orthanc"] > 0, row
    pixels = report["details"]["pixels"]["Hounsfield"]
    for kind, figures in pixels["throughput"].items():
        assert "fails" not in figures and figures["failures"] == 0, (kind, figures)
    for viewer in ("viewer_series", "viewer_series_identity", "viewer_multiframe"):
        assert len(pixels[viewer]["runs"]) == report["details"]["pixel_sizes"]["viewer_runs"]
    memory = report["details"]["memory"]
    for archive in ("Hounsfield", "Orthanc"):
        assert memory[archive]["samples"] > 0, memory
        assert memory[archive]["rss_peak_mb"] >= memory[archive]["rss_mean_mb"] > 0, memory
