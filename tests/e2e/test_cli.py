"""`hounsfield import`, `check` and `--version` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hounsfield import __version__
from tests.builders import make_instance, uid


def hounsfield(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "hounsfield.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = hounsfield(tmp_path, "--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_import_is_recursive_resumable_and_summarised(tmp_path: Path) -> None:
    source = tmp_path / "incoming"
    (source / "a" / "b").mkdir(parents=True)
    study = uid()
    for i in range(5):
        (source / "a" / f"{i}.dcm").write_bytes(make_instance(study_uid=study, instance_number=i))
    (source / "a" / "b" / "deep.dcm").write_bytes(make_instance(study_uid=study))
    (source / "a" / "b" / "notes.txt").write_text("not dicom")
    data = tmp_path / "data"

    first = hounsfield(data, "import", str(source), "--quiet")
    assert first.returncode == 0, first.stderr
    assert "stored 6, duplicates 0, rejected 1" in first.stderr
    assert "C000" in first.stderr

    second = hounsfield(data, "import", str(source), "--quiet")
    assert "stored 0, duplicates 0, rejected 0, skipped 7 already imported" in second.stderr

    again = hounsfield(data, "import", str(source), "--quiet", "--restart")
    assert "stored 0, duplicates 6, rejected 1" in again.stderr


def test_check_finds_corruption_and_orphans(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        (source / f"{i}.dcm").write_bytes(make_instance())
    data = tmp_path / "data"
    assert hounsfield(data, "import", str(source), "--quiet").returncode == 0
    clean = hounsfield(data, "check", "--quiet")
    assert clean.returncode == 0, clean.stderr
    assert "checked 3 instances: no problems" in clean.stderr

    blobs = sorted((data / "blobs").rglob("*.dcm"))
    corrupted = bytearray(blobs[0].read_bytes())
    corrupted[-1] ^= 0xFF
    blobs[0].write_bytes(bytes(corrupted))
    orphan = data / "blobs" / "default" / "1.2.3" / "4.5.6" / "7.8.9.dcm"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left behind")

    broken = hounsfield(data, "check", "--quiet")
    assert broken.returncode == 1
    assert "sha256:" in broken.stderr
    assert "orphan:" in broken.stderr

    repaired = hounsfield(data, "check", "--quiet", "--repair")
    assert not orphan.exists()
    assert "removed 1 unreferenced blobs" in repaired.stderr
