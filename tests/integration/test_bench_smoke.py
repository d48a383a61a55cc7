"""The benchmark harness runs end to end against Orthanc and Hounsfield (`bench.run --smoke`).

Tiny sizes, so it takes seconds; it checks that every figure is produced, not how fast anything
is (timed assertions are flaky: the figures live in docs/perf.md as ratios).
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
def test_bench_smoke_produces_every_figure(tmp_path: Path) -> None:
    require_tool("Orthanc")
    require_component("the Orthanc DICOMweb plugin", orthanc.dicomweb_installed())

    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [results] = tmp_path.glob("*.json")
    report = json.loads(results.read_text())
    assert report["smoke"] is True
    keys = {row["key"] for row in report["rows"]}
    assert {
        "stow_ct",
        "qido_patient_id",
        "qido_instances_of_series",
        "metadata_identity",
        "cstore_1",
        "cstore_4",
        "cfind_patient_id",
        "cfind_study_date_range",
        "cget",
        "cmove",
    } <= keys
    for row in report["rows"]:
        assert row["hounsfield"] is not None and row["hounsfield"] > 0, row
        assert row["orthanc"] is not None and row["orthanc"] > 0, row
