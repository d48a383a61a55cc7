"""The pixel benchmark runs end to end against Hounsfield and Orthanc (`bench.pixels --smoke`):
every figure is produced and Hounsfield answers every request correctly (how fast is for
docs/perf.md, not for a test)."""

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
def test_pixel_bench_smoke_produces_every_figure(tmp_path: Path) -> None:
    require_tool("Orthanc")
    require_component("the Orthanc DICOMweb plugin", orthanc.dicomweb_installed())
    run = subprocess.run(
        [sys.executable, "-m", "bench.pixels", "--smoke", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [results] = tmp_path.glob("pixels-*.json")
    report = json.loads(results.read_text())
    assert set(report["archives"]) == {"Hounsfield", "Orthanc"}
    ours = report["archives"]["Hounsfield"]
    for syntax in ("uncompressed", "jpeg2000", "htj2k"):
        for scenario in ("frames_as_stored", "frames_decoded", "rendered_jpeg"):
            figures = ours["scenarios"][syntax][scenario]
            assert figures["failures"] == 0 and figures["per_second"] > 0, (syntax, scenario)
    for archive in report["archives"].values():
        assert archive["first_image"]["cold_ms"] > 0
