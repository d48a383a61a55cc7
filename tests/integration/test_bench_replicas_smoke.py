"""`bench.replicas --smoke` runs end to end: 1 and 2 `hounsfield serve` processes sharing a
PostgreSQL schema and a blob directory, the clients spreading STOW-RS, QIDO-RS and WADO-RS
metadata over them. It checks that every figure is produced and every answer was right (each
QIDO-RS count covers instances stored through the other process), not how fast anything is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.conftest import require_postgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.services
@pytest.mark.slow
def test_bench_replicas_smoke_produces_every_figure(tmp_path: Path) -> None:
    url = require_postgres()

    run = subprocess.run(
        [sys.executable, "-m", "bench.replicas", "--smoke", "--url", url,
         "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [results] = tmp_path.glob("replicas-*.json")
    report = json.loads(results.read_text())
    assert report["wrong_answers"] == 0
    assert sorted(run["replicas"] for run in report["runs"]) == [1, 2]
    assert set(report["figures"]) == {"stow_ct", "stow_tiny", "qido", "metadata"}
    for figure in report["figures"].values():
        assert figure["1"] > 0 and figure["2"] > 0, figure
