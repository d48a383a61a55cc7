"""The BlobStore port's contract (hounsfield.ports.blobs), run against every adapter.

Another adapter joins by adding a factory to BLOB_STORES; a factory that needs an external
service calls `conftest.require_component` so that it skips locally and fails in CI.

The object store adapter runs against S3 (moto's server on loopback) and against obstore's
in-memory and local-file stores. No usable GCS or Azure emulator installs from PyPI (Azurite is
not there; gcp-storage-emulator answers 501 to obstore's XML API requests), so `gs://` and
`az://` are covered by the last two: they run every line of `ObjectBlobStore` that S3 runs, and
only the store object behind it differs (README, "Scale-out: object storage").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hounsfield.adapters.blobs.file import BlobKeyError, FileBlobStore
from hounsfield.adapters.blobs.memory import MemoryBlobStore
from hounsfield.ports.blobs import BlobStat, BlobStore

StoreFactory = Callable[[Path], BlobStore]


def file_store(tmp_path: Path) -> BlobStore:
    return FileBlobStore(tmp_path / "blobs")


def memory_store(tmp_path: Path) -> BlobStore:
    return MemoryBlobStore()


def s3_store(tmp_path: Path) -> BlobStore:
    from obstore.store import S3Store

    from hounsfield.adapters.blobs.objectstore import CLIENT, RETRY, ObjectBlobStore
    from tests.s3support import BUCKET, CREDENTIALS, shared_moto, unique_prefix

    server = shared_moto(tmp_path.parent)
    store = S3Store(
        BUCKET,
        prefix=unique_prefix("contract"),
        endpoint=server.endpoint,
        access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region=CREDENTIALS["AWS_REGION"],
        client_options={**CLIENT, "allow_http": True},
        retry_config=RETRY,
    )
    # Small limits, so that the multipart path and windowed reads run too (test_large_object...).
    return ObjectBlobStore(store, single_put_limit=64 * 1024, read_window=6 * 1024 * 1024)


def obstore_memory_store(tmp_path: Path) -> BlobStore:
    from obstore.store import MemoryStore

    from hounsfield.adapters.blobs.objectstore import ObjectBlobStore

    return ObjectBlobStore(MemoryStore(), single_put_limit=64 * 1024, read_window=6 * 1024 * 1024)


def obstore_local_store(tmp_path: Path) -> BlobStore:
    from obstore.store import LocalStore

    from hounsfield.adapters.blobs.objectstore import ObjectBlobStore

    store = LocalStore(tmp_path / "objects", mkdir=True, automatic_cleanup=True)
    return ObjectBlobStore(store, single_put_limit=64 * 1024, read_window=6 * 1024 * 1024)


BLOB_STORES: list[StoreFactory] = [
    file_store,
    memory_store,
    s3_store,
    obstore_memory_store,
    obstore_local_store,
]

KEY = "default/1.2.3/1.2.3.4/1.2.3.4.5.dcm"


@pytest.fixture(params=BLOB_STORES, ids=lambda factory: factory.__name__)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    factory: StoreFactory = request.param
    return factory(tmp_path)


@pytest.fixture
def stage(tmp_path: Path) -> Callable[[bytes], Path]:
    """Write bytes to a new local file, as the staging area does before a put."""
    directory = tmp_path / "staging"
    directory.mkdir()
    counter = iter(range(1_000_000))

    def write(data: bytes) -> Path:
        path = directory / f"{next(counter)}.part"
        path.write_bytes(data)
        return path

    return write


def put(store: BlobStore, stage: Callable[[bytes], Path], key: str, data: bytes) -> None:
    store.put_file(key, stage(data), durable=False)


DATA = bytes(range(256)) * 40 + b"tail"  # 10 244 bytes


# Put and read ----------------------------------------------------------------------------------


@pytest.mark.parametrize("durable", [True, False])
def test_put_then_read_back(
    store: BlobStore, stage: Callable[[bytes], Path], durable: bool
) -> None:
    staged = stage(DATA)
    store.put_file(KEY, staged, durable=durable)
    assert store.exists(KEY)
    assert store.stat(KEY) == BlobStat(size=len(DATA))
    assert store.get_range(KEY, 0, len(DATA)) == DATA
    assert store.get_range(KEY, 300, 17) == DATA[300:317]
    assert b"".join(store.iter_bytes(KEY)) == DATA
    assert list(store.keys()) == [KEY]


def test_staged_file_is_consumed(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    staged = stage(DATA)
    store.put_file(KEY, staged, durable=False)
    assert not staged.exists()


def test_iter_bytes_chunks(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    put(store, stage, KEY, DATA)
    chunks = list(store.iter_bytes(KEY, chunk_size=1000))
    assert b"".join(chunks) == DATA
    assert all(0 < len(c) <= 1000 for c in chunks)
    assert len(chunks) == 11


def test_empty_object(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    put(store, stage, KEY, b"")
    assert store.exists(KEY)
    assert store.stat(KEY).size == 0
    assert store.get_range(KEY, 0, 10) == b""
    assert list(store.iter_bytes(KEY)) == []


def test_ranges_past_the_end_are_short(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    put(store, stage, KEY, b"0123456789")
    assert store.get_range(KEY, 8, 100) == b"89"
    assert store.get_range(KEY, 10, 5) == b""
    assert store.get_range(KEY, 1000, 5) == b""
    assert store.get_range(KEY, 3, 0) == b""


def test_keys_lists_every_object(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    keys = {"p/1/2/3.dcm", "p/1/2/4.dcm", "p/1/5/6.dcm", "q/7/8/9.dcm", "top"}
    for i, key in enumerate(sorted(keys)):
        put(store, stage, key, str(i).encode())
    assert sorted(store.keys()) == sorted(keys)
    for i, key in enumerate(sorted(keys)):
        assert store.get_range(key, 0, 10) == str(i).encode()


def test_missing_key(store: BlobStore) -> None:
    assert not store.exists(KEY)
    assert list(store.keys()) == []
    with pytest.raises(FileNotFoundError):
        store.stat(KEY)
    with pytest.raises(FileNotFoundError):
        store.get_range(KEY, 0, 1)
    with pytest.raises(FileNotFoundError):
        list(store.iter_bytes(KEY))


def test_a_key_prefix_is_not_an_object(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    put(store, stage, KEY, DATA)
    assert not store.exists("default/1.2.3")
    assert not store.exists("default/1.2.3/1.2.3.4/1.2.3.4.5")


def test_large_object_round_trip(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    """Bigger than the object stores' single-put limit and read window above: a multipart
    upload, and reads in windows, must give back the same bytes in the same chunks."""
    data = os.urandom(13 * 1024 * 1024 + 123)
    put(store, stage, KEY, data)
    assert store.stat(KEY).size == len(data)
    chunks = list(store.iter_bytes(KEY, chunk_size=1 << 20))
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [1 << 20] * 13 + [123]
    middle = 6 * 1024 * 1024 - 10  # across the first read window's end
    assert store.get_range(KEY, middle, 20) == data[middle : middle + 20]
    second = stage(b"y" * 200_000)
    with pytest.raises(FileExistsError):
        store.put_file(KEY, second, durable=False)
    assert not second.exists()
    assert store.get_range(KEY, len(data) - 5, 100) == data[-5:]


@pytest.mark.parametrize(
    "key", ["tenant a/1.2+3/x.dcm", "p/\u00fc/\u00e9.dcm", "p/a%20b/c.dcm", "p/q?x=1#f/c.dcm"]
)
def test_keys_with_unusual_characters(
    store: BlobStore, stage: Callable[[bytes], Path], key: str
) -> None:
    """Partition names come from configuration and requests: object stores must escape them
    (spaces, '+', '%', '?', '#', non-ASCII) and give the same key back when listing."""
    put(store, stage, key, b"data")
    assert store.exists(key)
    assert store.get_range(key, 0, 4) == b"data"
    assert list(store.keys()) == [key]
    store.delete(key)
    assert not store.exists(key)


# Put over an existing key -------------------------------------------------------------------


def test_put_over_an_existing_key_fails_and_keeps_the_original(
    store: BlobStore, stage: Callable[[bytes], Path]
) -> None:
    put(store, stage, KEY, b"original")
    second = stage(b"replacement, longer than the original")
    with pytest.raises(FileExistsError):
        store.put_file(KEY, second, durable=False)
    assert b"".join(store.iter_bytes(KEY)) == b"original"
    assert store.stat(KEY).size == len(b"original")
    assert not second.exists()  # consumed even when refused
    assert list(store.keys()) == [KEY]


def race(store: BlobStore, key: str, contenders: list[Path]) -> dict[int, str]:
    """Put every staged file under one key at once; the outcome of each put."""
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(len(contenders))

    def attempt(i: int, path: Path) -> None:
        barrier.wait()
        try:
            store.put_file(key, path, durable=False)
        except FileExistsError:
            outcomes[i] = "exists"
        else:
            outcomes[i] = "stored"

    threads = [threading.Thread(target=attempt, args=(i, p)) for i, p in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_puts_of_one_key_keep_exactly_one(
    store: BlobStore, stage: Callable[[bytes], Path]
) -> None:
    # Duplicate uploads of an instance can race: exactly one put wins and its bytes stay.
    for round_ in range(10):
        key = f"{KEY}.{round_}"
        contenders = [stage(bytes([i]) * 4096) for i in range(8)]
        outcomes = race(store, key, contenders)
        winners = [i for i, outcome in outcomes.items() if outcome == "stored"]
        assert len(outcomes) == 8 and len(winners) == 1, outcomes
        assert b"".join(store.iter_bytes(key)) == bytes([winners[0]]) * 4096
        assert not any(p.exists() for p in contenders)


# Delete ---------------------------------------------------------------------------------------


def test_make_durable_after_non_durable_puts(
    store: BlobStore, stage: Callable[[bytes], Path]
) -> None:
    """A batch put with durable=False and then synced at once reads back unchanged."""
    keys = [f"p/study/series/{i}.dcm" for i in range(5)]
    for i, key in enumerate(keys):
        store.put_file(key, stage(bytes([i]) * 1000), durable=False)
    store.make_durable(keys)
    for i, key in enumerate(keys):
        assert store.get_range(key, 0, 1000) == bytes([i]) * 1000


def test_make_durable_of_a_missing_key_fails(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.make_durable(["nothing/here.dcm"])


def test_make_durable_fails_when_any_key_of_a_batch_is_missing(
    store: BlobStore, stage: Callable[[bytes], Path]
) -> None:
    """The file store syncs a batch's files and directories at once: a failure among them is
    still raised, whichever its position."""
    keys = [f"p/study/series/{i}.dcm" for i in range(3)]
    for key in keys:
        store.put_file(key, stage(b"x" * 100), durable=False)
    for missing in (["p/study/gone/1.dcm", *keys], [*keys, "p/study/series/gone.dcm"]):
        with pytest.raises(FileNotFoundError):
            store.make_durable(missing)


def test_delete(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    put(store, stage, KEY, DATA)
    put(store, stage, "default/other.dcm", b"x")
    store.delete(KEY)
    assert not store.exists(KEY)
    assert list(store.keys()) == ["default/other.dcm"]
    with pytest.raises(FileNotFoundError):
        store.get_range(KEY, 0, 1)


def test_delete_of_a_missing_key_is_not_an_error(store: BlobStore) -> None:
    store.delete(KEY)
    store.delete(KEY)
    assert not store.exists(KEY)


def test_a_deleted_key_can_be_put_again(store: BlobStore, stage: Callable[[bytes], Path]) -> None:
    put(store, stage, KEY, b"first")
    store.delete(KEY)
    put(store, stage, KEY, b"second")
    assert store.get_range(KEY, 0, 100) == b"second"


# File store specifics ----------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../outside",
        "a/..",
        "a//b",
        "a/b/",
        "./a",
        "a/./b",
    ],
)
def test_file_store_rejects_invalid_keys(
    files: FileBlobStore, stage: Callable[[bytes], Path], key: str, tmp_path: Path
) -> None:
    staged = stage(b"x")
    with pytest.raises(BlobKeyError):
        files.put_file(key, staged, durable=False)
    assert staged.exists()  # nothing was consumed
    with pytest.raises(BlobKeyError):
        files.exists(key)
    with pytest.raises(BlobKeyError):
        files.delete(key)
    with pytest.raises(BlobKeyError):
        files.get_range(key, 0, 1)
    assert not (tmp_path / "outside").exists()


def test_blob_key_error_is_a_value_error() -> None:
    assert issubclass(BlobKeyError, ValueError)


def test_file_store_lays_keys_out_as_paths(
    files: FileBlobStore, stage: Callable[[bytes], Path]
) -> None:
    put(files, stage, KEY, DATA)
    path = files.root.joinpath(*KEY.split("/"))
    assert path.read_bytes() == DATA
    assert files.path(KEY) == path
    assert files.capabilities.local_paths is True


def test_file_store_removes_empty_parents_on_delete(
    files: FileBlobStore, stage: Callable[[bytes], Path]
) -> None:
    put(files, stage, "p/study/series-a/1.dcm", b"1")
    put(files, stage, "p/study/series-a/2.dcm", b"2")
    put(files, stage, "p/study/series-b/3.dcm", b"3")
    files.delete("p/study/series-a/1.dcm")
    assert (files.root / "p/study/series-a").is_dir()  # still holds 2.dcm
    files.delete("p/study/series-a/2.dcm")
    assert not (files.root / "p/study/series-a").exists()
    assert (files.root / "p/study/series-b").is_dir()
    files.delete("p/study/series-b/3.dcm")
    assert not (files.root / "p").exists()
    assert files.root.is_dir()  # the root itself stays
    assert list(files.root.iterdir()) == []


def test_file_store_delete_of_a_missing_key_in_a_missing_directory(files: FileBlobStore) -> None:
    files.delete("no/such/dir/x.dcm")
    assert list(files.root.iterdir()) == []


def test_file_store_keys_survive_a_new_instance(
    files: FileBlobStore, stage: Callable[[bytes], Path]
) -> None:
    put(files, stage, KEY, DATA)
    reopened = FileBlobStore(files.root)
    assert list(reopened.keys()) == [KEY]
    assert reopened.get_range(KEY, 0, 4) == DATA[:4]


def test_file_store_put_from_another_directory_keeps_bytes(
    files: FileBlobStore, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    staged = elsewhere / "upload.part"
    payload = os.urandom(100_000)
    staged.write_bytes(payload)
    files.put_file(KEY, staged)
    assert b"".join(files.iter_bytes(KEY, chunk_size=4096)) == payload
    assert not staged.exists()


def test_file_store_without_hard_links(
    files: FileBlobStore, stage: Callable[[bytes], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staging on another file system (EXDEV), or a file system without hard links.
    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    staged = stage(DATA)
    files.put_file(KEY, staged)
    assert not staged.exists()
    second = stage(b"other")
    with pytest.raises(FileExistsError):
        files.put_file(KEY, second)
    assert not second.exists()
    assert b"".join(files.iter_bytes(KEY)) == DATA


def test_memory_store_has_no_local_paths() -> None:
    assert MemoryBlobStore().capabilities.local_paths is False
