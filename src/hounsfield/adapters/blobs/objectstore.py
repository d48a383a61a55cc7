"""Blobs in object storage (S3 and S3-compatible, Google Cloud Storage, Azure Blob) via obstore.

obstore (Rust `object_store` behind a thin Python layer) rather than boto3: it used 4x less CPU
for the same object I/O (DESIGN.md §4), releases the GIL while it waits, and gives S3, GCS and
Azure one API, so the three schemes share every line of this adapter. Only `open_object_blobs`
knows which cloud it talks to; `ObjectBlobStore` works on any obstore store, which is also how
the shared code path is contract-tested without a cloud (obstore's in-memory and local stores).

How the BlobStore port maps onto an object store:

- `put_file` never overwrites. Objects up to `single_put_limit` go up in one PUT with
  `If-None-Match: *` (obstore's `mode="create"`; GCS `ifGenerationMatch=0`, Azure `If-None-Match`
  likewise), so of two concurrent writers exactly one wins, decided by the store. obstore sends
  a conditional put as one request holding the whole body, so larger objects instead stream
  from the staged file as a multipart upload (bounded memory: `chunk_size x max_concurrency`)
  after a HEAD: between that HEAD and the completion another writer could slip in, and the later
  upload would replace the earlier. Ingest never races itself there (the pending index row makes
  one writer per key, key idea 3), so the window only matters to writers outside the archive.
- `make_durable` sends nothing for keys this process has just put: an object store acknowledges
  a PUT only once the object is durable. It still HEADs keys it did not write here, because the
  contract says a missing key is an error.
- `get_range` is one ranged GET (a frame is one request, key idea 1); `iter_bytes` streams one
  GET, or ranged windows for large objects so that no single request outlives the client's
  timeout while a slow consumer drains it.
- Every failure surfaces as an `OSError` (missing keys as `FileNotFoundError`, refused puts as
  `FileExistsError`), which is what the services catch; transient failures are first retried by
  obstore with exponential back-off and jitter (`RETRY`). A conditional PUT retried after a lost
  response comes back 412 although it stored the object: ingest then fails that one instance
  and the object waits as an orphan for the next upload of the key or `check --repair`.

The choices and their alternatives: docs/adr/0006-object-storage-blobs.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlparse

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError
from obstore.store import AzureStore, GCSStore, S3Store

from hounsfield.adapters.blobs.file import BlobKeyError
from hounsfield.ports.blobs import BlobCapabilities, BlobStat

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

MiB: Final = 1 << 20

# Transient errors (5xx, dropped connections, timeouts of safe requests) are retried with
# exponential back-off and jitter: 100 ms doubling up to 10 s, for at most 2 minutes in all
# (well below the 5 minutes after which a signed request would expire).
RETRY: Final[RetryConfig] = {
    "max_retries": 8,
    "retry_timeout": timedelta(minutes=2),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=10),
        "base": 2,
    },
}

# `timeout` bounds one whole request, body included: generous enough for a 64 MiB part or window
# on a slow link; a stalled connection is caught sooner by `read_timeout`.
CLIENT: Final[ClientConfig] = {
    "connect_timeout": "5s",
    "read_timeout": "60s",
    "timeout": "10min",
}

UNCONFIRMED_LIMIT: Final = 100_000

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")


class ObjectStoreError(OSError):
    """An object store request failed after obstore's retries (network, permissions...)."""


def _check_key(key: str) -> str:
    """The same key rules as the file store, so a key valid in one store is valid in all."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BlobKeyError(f"invalid blob key {key!r}")
    return key


def _os_error(exc: BaseError, key: str) -> OSError:
    if isinstance(exc, AlreadyExistsError | PreconditionError):
        return FileExistsError(f"blob {key!r} already exists")
    return ObjectStoreError(f"object store request for blob {key!r} failed: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    """obstore messages carry a multi-line debug dump of the request; logs get its summary."""
    return next(iter(str(exc).splitlines()), type(exc).__name__)


class ObjectBlobStore:
    """The BlobStore port on any obstore store (S3, GCS, Azure, local, memory)."""

    capabilities = BlobCapabilities(local_paths=False)

    def __init__(
        self,
        store: ObjectStore,
        *,
        single_put_limit: int = 64 * MiB,
        chunk_size: int = 8 * MiB,
        max_concurrency: int = 4,
        read_window: int = 64 * MiB,
        description: str = "object store",
    ) -> None:
        """`single_put_limit`: largest object sent as one conditional PUT (held in memory while
        it is sent); `chunk_size` x `max_concurrency`: memory of one multipart upload;
        `read_window`: largest single GET of `iter_bytes`."""
        self.store = store
        self.single_put_limit = single_put_limit
        self.chunk_size = max(chunk_size, 5 * MiB)  # S3's minimum part size
        self.max_concurrency = max_concurrency
        self.read_window = read_window
        self.description = description
        # Keys put by this process and not yet confirmed by `make_durable`: they need no HEAD.
        self._unconfirmed: dict[str, None] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ObjectBlobStore({self.description})"

    # Writing ------------------------------------------------------------------------------------

    def put_file(self, key: str, staged: Path, *, durable: bool = True) -> None:
        """Upload the staged file; the object is durable when the store acknowledges it, so
        `durable` needs no extra step. The staged file is removed whatever the outcome."""
        _check_key(key)
        try:
            size = staged.stat().st_size
            if size <= self.single_put_limit:
                obstore.put(self.store, key, staged, mode="create", use_multipart=False)
            else:
                if self._exists(key):
                    raise FileExistsError(f"blob {key!r} already exists")
                obstore.put(
                    self.store,
                    key,
                    staged,
                    use_multipart=True,
                    chunk_size=self.chunk_size,
                    max_concurrency=self.max_concurrency,
                )
        except BaseError as exc:
            raise _os_error(exc, key) from exc
        finally:
            staged.unlink(missing_ok=True)
        if not durable:
            with self._lock:
                self._unconfirmed[key] = None
                if len(self._unconfirmed) > UNCONFIRMED_LIMIT:
                    # Nobody calls make_durable (durable = false): forget the oldest; were it
                    # ever asked for, it would cost one HEAD.
                    del self._unconfirmed[next(iter(self._unconfirmed))]

    def make_durable(self, keys: Sequence[str]) -> None:
        """Nothing to sync: a successful PUT is already durable. Keys not put by this process
        are HEADed so that a missing one fails, as in every store."""
        unknown = []
        with self._lock:
            for key in keys:
                if key in self._unconfirmed:
                    del self._unconfirmed[key]
                else:
                    unknown.append(key)
        for key in unknown:
            self._head(key)

    def delete(self, key: str) -> None:
        """S3 answers a delete of a missing key with success, GCS and Azure with 404: both are
        success here (deletes are retried)."""
        _check_key(key)
        with self._lock:
            self._unconfirmed.pop(key, None)
        try:
            obstore.delete(self.store, key)
        except FileNotFoundError:
            pass
        except BaseError as exc:
            raise _os_error(exc, key) from exc

    # Reading ------------------------------------------------------------------------------------

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        _check_key(key)
        if length <= 0:
            self._head(key)  # a missing key is still an error
            return b""
        try:
            return bytes(obstore.get_range(self.store, key, start=offset, length=length))
        except FileNotFoundError:
            raise
        except BaseError as exc:
            # Stores refuse a range that starts at or past the end (HTTP 416), where the port
            # answers short; any other failure is re-raised once the size says it is not that.
            if offset >= self._head(key).size:
                return b""
            raise _os_error(exc, key) from exc

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Chunks of exactly `chunk_size` bytes (the last one shorter) whatever the network
        delivers, so memory stays bounded by `chunk_size` plus one network read."""
        _check_key(key)
        try:
            result = obstore.get(self.store, key)
            size = result.meta["size"]
            if size <= self.read_window:
                yield from _rechunk(result.stream(min_chunk_size=chunk_size), chunk_size)
                return
            del result  # large object: drop this response and read it in bounded windows
            for start in range(0, size, self.read_window):
                end = min(start + self.read_window, size)
                window = obstore.get(self.store, key, options={"range": (start, end)})
                yield from _rechunk(window.stream(min_chunk_size=chunk_size), chunk_size)
        except FileNotFoundError:
            raise
        except BaseError as exc:
            raise _os_error(exc, key) from exc

    def exists(self, key: str) -> bool:
        _check_key(key)
        return self._exists(key)

    def stat(self, key: str) -> BlobStat:
        _check_key(key)
        return self._head(key)

    def keys(self) -> Iterator[str]:
        """Every object under the store's prefix, listed page by page (1,000 per request)."""
        try:
            for page in obstore.list(self.store, chunk_size=1000):
                for meta in page:
                    yield meta["path"]
        except BaseError as exc:
            raise ObjectStoreError(
                f"listing {self.description} failed: {_first_line(exc)}"
            ) from exc

    def _exists(self, key: str) -> bool:
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        return True

    def _head(self, key: str) -> BlobStat:
        try:
            return BlobStat(size=obstore.head(self.store, key)["size"])
        except FileNotFoundError:
            raise FileNotFoundError(f"blob {key!r} does not exist") from None
        except BaseError as exc:
            raise _os_error(exc, key) from exc


def _rechunk(stream: Iterator[bytes], chunk_size: int) -> Iterator[bytes]:
    pending = bytearray()
    for piece in stream:
        if not pending and len(piece) == chunk_size:
            yield piece
            continue
        pending += piece
        while len(pending) >= chunk_size:
            yield bytes(pending[:chunk_size])
            del pending[:chunk_size]
    if pending:
        yield bytes(pending)


# Opening by URL ---------------------------------------------------------------------------------


def _endpoint(environ: Mapping[str, str]) -> str | None:
    for name in _ENDPOINT_VARIABLES:
        if environ.get(name):
            return environ[name]
    return None


def open_object_blobs(url: str, environ: Mapping[str, str] | None = None) -> ObjectBlobStore:
    """`s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`.

    Endpoint, region and credentials come from each cloud's standard environment variables,
    read by obstore itself (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    AWS_REGION, AWS_ENDPOINT_URL, instance and container roles...; GOOGLE_APPLICATION_CREDENTIALS,
    GOOGLE_SERVICE_ACCOUNT...; AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY,
    AZURE_STORAGE_USE_EMULATOR...), so no secret ever sits in a URL or a settings file. A custom
    S3 endpoint (MinIO, Ceph, moto) is addressed path-style, obstore's default; an `http://`
    endpoint is allowed because naming it is the operator's explicit choice.
    """
    env = os.environ if environ is None else environ
    parsed = urlparse(url)
    container = parsed.netloc
    prefix = unquote(parsed.path).strip("/") or None
    if not container:
        raise ValueError(f"blob URL {url!r} names no bucket or container")
    if parsed.query or parsed.fragment or parsed.params:
        raise ValueError(
            f"blob URL {url!r}: options go in the standard environment variables, not the URL"
        )
    client: ClientConfig = {**CLIENT}
    store: ObjectStore
    if parsed.scheme == "s3":
        endpoint = _endpoint(env)
        if endpoint is not None and endpoint.startswith("http://"):
            client["allow_http"] = True
        # S3 verifies each upload against the SHA-256 that obstore computes and sends
        # (x-amz-checksum-sha256), refusing a body corrupted on the way; AWS_CHECKSUM_ALGORITHM
        # overrides (CRC64NVME), e.g. for an S3-compatible server without additional checksums.
        checksum = env.get("AWS_CHECKSUM_ALGORITHM", "SHA256")
        store = S3Store(
            container,
            prefix=prefix,
            client_options=client,
            retry_config=RETRY,
            checksum_algorithm=checksum,
        )
    elif parsed.scheme == "gs":
        store = GCSStore(container, prefix=prefix, client_options=client, retry_config=RETRY)
    elif parsed.scheme == "az":
        if env.get("AZURE_STORAGE_USE_EMULATOR", "").lower() in ("1", "true"):
            client["allow_http"] = True
        store = AzureStore(container, prefix=prefix, client_options=client, retry_config=RETRY)
    else:
        raise ValueError(f"blob URL {url!r}: not an s3://, gs:// or az:// URL")
    return ObjectBlobStore(store, description=f"{parsed.scheme}://{container}/{prefix or ''}")
