"""The object store adapter beyond the blob contract: opening by URL, the optional dependency,
request economy (make_durable) and how failures surface.

The contract itself (tests/contract/test_blob_contract.py) runs against S3 and obstore's
in-memory and local stores.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import obstore
import pytest
from obstore.store import AzureStore, GCSStore, MemoryStore, S3Store

from hounsfield.adapters.blobs import objectstore
from hounsfield.adapters.blobs.file import BlobKeyError
from hounsfield.adapters.blobs.objectstore import (
    ObjectBlobStore,
    ObjectStoreError,
    open_object_blobs,
)
from hounsfield.bootstrap import open_blobs
from hounsfield.config import ConfigError, load_settings
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def no_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """obstore reads AWS_*, GOOGLE_* and AZURE_* itself: start every test from none."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "AZURE_")):
            monkeypatch.delenv(name)


# Opening by URL -------------------------------------------------------------------------------


def test_s3_url_gives_bucket_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    blobs = open_object_blobs("s3://archive/site-a/blobs/")
    assert isinstance(blobs.store, S3Store)
    assert blobs.store.config["bucket"] == "archive"
    assert blobs.store.prefix == "site-a/blobs"
    options = blobs.store.client_options
    assert options is not None
    assert str(options["allow_http"]).lower() == "true"  # the operator named an http:// endpoint
    retry = blobs.store.retry_config
    assert retry is not None
    assert retry["max_retries"] == 8
    assert retry["backoff"]["init_backoff"] == timedelta(milliseconds=100)


def test_s3_without_a_custom_endpoint_stays_on_https() -> None:
    blobs = open_object_blobs("s3://archive")
    assert isinstance(blobs.store, S3Store)
    assert blobs.store.prefix is None
    options = blobs.store.client_options
    assert options is not None
    assert "allow_http" not in options


def test_gs_and_az_urls_configure_their_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    gs = open_object_blobs("gs://images/prod")
    assert isinstance(gs.store, GCSStore)
    assert gs.store.prefix == "prod"
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "hospital")
    az = open_object_blobs("az://dicom/prefix")
    assert isinstance(az.store, AzureStore)
    assert az.store.prefix == "prefix"
    assert repr(az) == "ObjectBlobStore(az://dicom/prefix)"


@pytest.mark.parametrize(
    "url",
    ["s3:///prefix-only", "s3://bucket/p?endpoint=http://x", "http://bucket/p"],
)
def test_bad_object_store_urls(url: str) -> None:
    with pytest.raises(ValueError, match="blob URL"):
        open_object_blobs(url)


def test_bootstrap_opens_object_store_urls() -> None:
    assert isinstance(open_blobs("s3://bucket/prefix"), ObjectBlobStore)
    with pytest.raises(ConfigError, match="names no bucket"):
        open_blobs("gs://")


def test_settings_accept_object_store_urls() -> None:
    for url in ("s3://bucket/prefix", "gs://bucket", "az://container/p"):
        assert load_settings(None, {"HOUNSFIELD_BLOB_URL": url}).blob_url == url


def test_missing_obstore_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)  # import obstore -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "hounsfield.adapters.blobs.objectstore")
    with pytest.raises(ConfigError, match=r"pip install 'hounsfield\[s3\]'"):
        open_blobs("s3://bucket/prefix")
    assert isinstance(open_blobs("memory://"), object)  # the embedded stores need nothing


# Requests ---------------------------------------------------------------------------------------


@pytest.fixture
def heads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = obstore.head

    def counting(store: MemoryStore, path: str) -> obstore.ObjectMeta:
        seen.append(path)
        return real(store, path)

    monkeypatch.setattr(objectstore.obstore, "head", counting)
    return seen


def staged(tmp_path: Path, data: bytes, name: str = "x.part") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_make_durable_sends_nothing_for_keys_just_put(tmp_path: Path, heads: list[str]) -> None:
    blobs = ObjectBlobStore(MemoryStore())
    blobs.put_file("a/1.dcm", staged(tmp_path, b"1"), durable=False)
    blobs.put_file("a/2.dcm", staged(tmp_path, b"2"), durable=False)
    blobs.make_durable(["a/1.dcm", "a/2.dcm"])
    assert heads == []
    # Once confirmed, or when written elsewhere, a key is checked with one HEAD.
    blobs.make_durable(["a/1.dcm"])
    assert heads == ["a/1.dcm"]
    with pytest.raises(FileNotFoundError):
        blobs.make_durable(["a/never-written.dcm"])


def test_a_deleted_key_is_no_longer_taken_for_written(tmp_path: Path) -> None:
    blobs = ObjectBlobStore(MemoryStore())
    blobs.put_file("a/1.dcm", staged(tmp_path, b"1"), durable=False)
    blobs.delete("a/1.dcm")
    with pytest.raises(FileNotFoundError):
        blobs.make_durable(["a/1.dcm"])


def test_unconfirmed_keys_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objectstore, "UNCONFIRMED_LIMIT", 3)
    blobs = ObjectBlobStore(MemoryStore())
    for i in range(10):
        blobs.put_file(f"k/{i}", staged(tmp_path, b"x"), durable=False)
    assert len(blobs._unconfirmed) == 3
    blobs.make_durable([f"k/{i}" for i in range(10)])  # the forgotten ones are HEADed: present


def test_durable_puts_are_not_tracked(tmp_path: Path) -> None:
    blobs = ObjectBlobStore(MemoryStore())
    blobs.put_file("k", staged(tmp_path, b"x"))
    assert blobs._unconfirmed == {}


def test_small_objects_are_one_conditional_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, object]] = []
    real = obstore.put

    def recording(store: MemoryStore, path: str, file: Path, **kwargs: object) -> object:
        calls.append(kwargs)
        return real(store, path, file, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(objectstore.obstore, "put", recording)
    blobs = ObjectBlobStore(MemoryStore(), single_put_limit=1000)
    blobs.put_file("small", staged(tmp_path, b"s" * 1000))
    blobs.put_file("large", staged(tmp_path, b"l" * 1001))
    assert calls[0]["mode"] == "create"
    assert calls[0]["use_multipart"] is False
    assert "mode" not in calls[1]
    assert calls[1]["use_multipart"] is True


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a//b", "a/./b", "a/"])
def test_invalid_keys_are_refused_before_any_request(tmp_path: Path, key: str) -> None:
    blobs = ObjectBlobStore(MemoryStore())
    path = staged(tmp_path, b"x")
    with pytest.raises(BlobKeyError):
        blobs.put_file(key, path)
    assert path.exists()
    for call in (blobs.exists, blobs.stat, blobs.delete):
        with pytest.raises(BlobKeyError):
            call(key)


# Failures -------------------------------------------------------------------------------------


@pytest.fixture
def unreachable() -> ObjectBlobStore:
    """An S3 endpoint where nothing listens, without retries so that failures come at once."""
    store = S3Store(
        "bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id="k",
        secret_access_key="s",
        region="us-east-1",
        client_options={"allow_http": True, "connect_timeout": "1s"},
        retry_config={"max_retries": 0},
    )
    return ObjectBlobStore(store)


def test_failures_are_os_errors(tmp_path: Path, unreachable: ObjectBlobStore) -> None:
    """The services catch OSError (ingest answers "out of resources" and keeps serving)."""
    path = staged(tmp_path, b"x")
    with pytest.raises(ObjectStoreError):
        unreachable.put_file("k", path)
    assert not path.exists()  # consumed whatever the outcome
    assert issubclass(ObjectStoreError, OSError)
    with pytest.raises(OSError, match="failed") as raised:
        unreachable.exists("k")  # unknown is not "missing"
    assert "\n" not in str(raised.value)  # a one-line summary for the logs
    with pytest.raises(OSError, match="failed"):
        unreachable.get_range("k", 0, 10)
    with pytest.raises(OSError, match="failed"):
        list(unreachable.iter_bytes("k"))
    with pytest.raises(OSError, match="failed"):
        list(unreachable.keys())
    with pytest.raises(OSError, match="failed"):
        unreachable.delete("k")


def test_s3_uploads_carry_their_sha256_for_the_server_to_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 checks `x-amz-checksum-sha256` against the body it receives and refuses a mismatch
    (additional checksums): the adapter asks obstore to send it with every upload. A local
    endpoint records what arrives (moto accepts the header without recording it)."""
    import base64
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("ETag", '"0"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        store = open_object_blobs("s3://bucket/prefix")
        staged = tmp_path / "object.dcm"
        staged.write_bytes(b"DICM" * 1000)
        store.put_file("a/b.dcm", staged)
    finally:
        server.shutdown()
        server.server_close()
    [headers] = seen
    expected = base64.b64encode(hashlib.sha256(b"DICM" * 1000).digest()).decode()
    assert headers.get("x-amz-checksum-sha256") == expected
