"""The memory benchmark harness (`bench.memory --smoke`) runs against both archives and reports
resident memory figures; the figures themselves live in docs/perf.md."""

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
def test_memory_smoke_reports_rss_for_both_archives(tmp_path: Path) -> None:
    require_tool("Orthanc")
    require_component("the Orthanc DICOMweb plugin", orthanc.dicomweb_installed())
    run = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--smoke", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [results] = tmp_path.glob("memory-smoke-*.json")
    report = json.loads(results.read_text())
    assert set(report["archives"]) == {"Hounsfield", "Orthanc"}
    for figures in report["archives"].values():
        assert figures["slices"] > 0 and figures["samples"] > 0
        assert figures["rss_peak_mb"] >= figures["rss_mean_mb"] > 0
