"""`hounsfield import`, `check` and `--version` as a user runs them."""

from __future__ import annotations

from pathlib import Path

from hounsfield import __version__
from tests.builders import make_instance, uid
from tests.conftest import hounsfield_cli


def test_version(tmp_path: Path) -> None:
    result = hounsfield_cli(tmp_path, "--version")
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

    first = hounsfield_cli(data, "import", str(source), "--quiet")
    assert first.returncode == 0, first.stderr
    assert "stored 6, duplicates 0, rejected 1" in first.stderr
    assert "C000" in first.stderr

    second = hounsfield_cli(data, "import", str(source), "--quiet")
    assert "stored 0, duplicates 0, rejected 0, skipped 7 already imported" in second.stderr

    again = hounsfield_cli(data, "import", str(source), "--quiet", "--restart")
    assert "stored 0, duplicates 6, rejected 1" in again.stderr


def test_check_finds_corruption_and_orphans(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        (source / f"{i}.dcm").write_bytes(make_instance())
    data = tmp_path / "data"
    assert hounsfield_cli(data, "import", str(source), "--quiet").returncode == 0
    clean = hounsfield_cli(data, "check", "--quiet")
    assert clean.returncode == 0, clean.stderr
    assert "checked 3 instances: no problems" in clean.stderr

    blobs = sorted((data / "blobs").rglob("*.dcm"))
    corrupted = bytearray(blobs[0].read_bytes())
    corrupted[-1] ^= 0xFF
    blobs[0].write_bytes(bytes(corrupted))
    orphan = data / "blobs" / "default" / "1.2.3" / "4.5.6" / "7.8.9.dcm"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left behind")

    broken = hounsfield_cli(data, "check", "--quiet")
    assert broken.returncode == 1
    assert "sha256:" in broken.stderr
    assert "orphan:" in broken.stderr

    repaired = hounsfield_cli(data, "check", "--quiet", "--repair")
    assert not orphan.exists()
    assert "removed 1 unreferenced blobs" in repaired.stderr
