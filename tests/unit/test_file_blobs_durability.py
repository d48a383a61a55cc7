"""What the file blob store syncs to make a blob durable (docs/adr/0002): the file, its
directory, and the parent of every directory it created for the blob, all before
`make_durable` returns, including for a blob put by another caller into a directory that was
created a moment before and whose own name is not durable yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from hounsfield.adapters.blobs import file as file_blobs
from hounsfield.adapters.blobs.file import FileBlobStore


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    paths: list[Path] = []
    real = file_blobs._fsync_path

    def recording(path: Path) -> None:
        paths.append(path)
        real(path)

    monkeypatch.setattr(file_blobs, "_fsync_path", recording)
    return paths


def staged(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "staging" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"DICM" * 10)
    return path


def test_a_new_study_and_series_have_their_names_synced(tmp_path: Path, synced: list[Path]) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    root = store.root
    store.put_file("p/study/series/1.dcm", staged(tmp_path, "a"), durable=False)
    store.make_durable(["p/study/series/1.dcm"])
    assert set(synced) == {
        root / "p/study/series/1.dcm",
        root / "p/study/series",  # the file's name
        root / "p/study",  # the name of the new series directory
        root / "p",  # the name of the new study directory
        root,  # the name of the new partition directory
    }
    synced.clear()
    store.put_file("p/study/series/2.dcm", staged(tmp_path, "b"), durable=False)
    store.make_durable(["p/study/series/2.dcm"])
    assert set(synced) == {root / "p/study/series/2.dcm", root / "p/study/series"}


def test_a_blob_put_into_a_directory_created_for_another_waits_for_its_name(
    tmp_path: Path, synced: list[Path]
) -> None:
    """Two instances of a new series: the second is put (and synced) before the first's
    make_durable; the series directory's name must be synced for the second as well."""
    store = FileBlobStore(tmp_path / "blobs")
    root = store.root
    store.put_file("p/s/new/1.dcm", staged(tmp_path, "a"), durable=False)
    store.put_file("p/s/new/2.dcm", staged(tmp_path, "b"), durable=False)
    store.make_durable(["p/s/new/2.dcm"])
    assert {root / "p/s", root / "p", root} <= set(synced)
    synced.clear()
    store.make_durable(["p/s/new/1.dcm"])  # already synced by the other: not again
    assert set(synced) == {root / "p/s/new/1.dcm", root / "p/s/new"}


def test_a_durable_put_syncs_the_same(tmp_path: Path, synced: list[Path]) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    store.put_file("q/a/b/1.dcm", staged(tmp_path, "a"), durable=True)
    assert store.root / "q/a" in synced and store.root / "q/a/b/1.dcm" in synced


def test_a_directory_made_by_another_process_is_synced_once_by_this_one(
    tmp_path: Path, synced: list[Path]
) -> None:
    """Another process (a second store on the same tree) created the series directory and has
    not synced its name yet: this process's first blob there syncs the names above it; its
    next blob does not again."""
    other = FileBlobStore(tmp_path / "blobs")
    other.put_file("p/s/new/1.dcm", staged(tmp_path, "a"), durable=False)  # not made durable
    ours = FileBlobStore(tmp_path / "blobs")
    root = ours.root
    synced.clear()
    ours.put_file("p/s/new/2.dcm", staged(tmp_path, "b"), durable=False)
    ours.make_durable(["p/s/new/2.dcm"])
    assert {root / "p/s", root / "p", root} <= set(synced)
    synced.clear()
    ours.put_file("p/s/new/3.dcm", staged(tmp_path, "c"), durable=False)
    ours.make_durable(["p/s/new/3.dcm"])
    assert set(synced) == {root / "p/s/new/3.dcm", root / "p/s/new"}


def test_a_directory_removed_by_a_delete_is_fresh_again(tmp_path: Path, synced: list[Path]) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    root = store.root
    store.put_file("p/s/x/1.dcm", staged(tmp_path, "a"), durable=True)
    store.delete("p/s/x/1.dcm")  # the empty series, study and partition directories go too
    assert not (root / "p").exists()
    synced.clear()
    store.put_file("p/s/x/2.dcm", staged(tmp_path, "b"), durable=True)
    assert {root / "p/s", root / "p", root} <= set(synced)
    other = FileBlobStore(tmp_path / "blobs")  # a delete by another process
    other.delete("p/s/x/2.dcm")
    synced.clear()
    store.put_file("p/s/x/3.dcm", staged(tmp_path, "c"), durable=True)
    assert (root / "p/s/x/3.dcm").exists()
    assert {root / "p/s", root / "p", root} <= set(synced)
