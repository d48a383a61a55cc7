"""Blobs as files on a local or network file system.

Objects are moved into place with an atomic rename from a staging directory on the same file
system, so a reader never sees a half-written object, and fsynced (file, then directory) before
`put_file` returns when durability is asked for (docs/adr/0002-durability.md).

A blob's name is durable only once every directory entry on its path is: the file's entry in
its directory, and the entry of each directory this store created for it (a new study or
series directory) in its parent. Directories created by `put_file` are remembered as *fresh*
until a `make_durable` has synced their parents; every `make_durable` whose keys lie under a
fresh directory syncs those parents too, so an instance stored by another thread into a series
directory just created is not acknowledged before that directory's name is on disk.

Other processes (HTTP and DIMSE workers, replicas) share the directory tree, and what is fresh
in one is unknown to the others: a directory this process has not seen synced is treated as
fresh too, whoever created it, so the first instance a process stores under it syncs the
entries above it once (`_known` then remembers the directory, bounded in size).

`make_durable` issues the fsyncs of a batch's files and of their directories all at once, from
a small pool of threads, and returns when every one has completed. Every fsync it needs still
happens after the link that created the name, so the guarantee is the same as syncing them one
after another; but on a journalling file system (ext4, XFS) the syncs issued together wait for
one journal commit and one disk cache flush, where syncs issued in sequence pay a flush each
(a directory fsync after its file's fsync still flushes the disk cache again on ext4).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hounsfield.ports.blobs import BlobCapabilities, BlobStat


class BlobKeyError(ValueError):
    """A key that would escape the store's root or is otherwise malformed."""


#: Most fsyncs of one `make_durable` in flight at once (a STOW-RS batch holds up to 32 files).
SYNC_THREADS = 8
#: Directories remembered as durable before the memory is cleared (then re-learned by a sync).
KNOWN_DIRECTORIES = 100_000


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    capabilities = BlobCapabilities(local_paths=True)

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._sync_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        #: Directories whose own entry (in their parent) may not be durable yet: created here,
        #: or found here but not yet synced by this process (another process may have made it).
        self._fresh: set[Path] = set()
        #: Directories whose entries up to the root this process has synced.
        self._known: set[Path] = set()
        self._fresh_lock = threading.Lock()

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._sync_pool is None:
                self._sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="blob-sync")
            return self._sync_pool

    def path(self, key: str) -> Path:
        """The file holding `key`; keys are relative, '/'-separated, without '..' segments."""
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise BlobKeyError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def _make_directory(self, directory: Path) -> None:
        """Create `directory` and its missing ancestors, recorded as fresh *before* they exist,
        so a thread that finds one already there also finds it fresh; directories that exist
        but that this process has not synced are fresh too (module docstring)."""
        if directory in self._known and directory.is_dir():
            return
        # Climb to the nearest directory known durable that still exists (a delete, here or
        # in another process, may have removed known ones since).
        unsure: list[Path] = []
        probe = directory
        while probe != self.root and not (probe in self._known and probe.is_dir()):
            unsure.append(probe)
            probe = probe.parent
        with self._fresh_lock:
            self._known.difference_update(unsure)
            self._fresh.update(unsure)
        directory.mkdir(parents=True, exist_ok=True)

    def put_file(self, key: str, staged: Path, *, durable: bool = True) -> None:
        target = self.path(key)
        self._make_directory(target.parent)
        try:
            # A hard link never replaces an existing file, so of two concurrent puts of one key
            # exactly one wins; a check followed by a rename would let both through.
            os.link(staged, target)
        except FileExistsError:
            staged.unlink(missing_ok=True)
            raise FileExistsError(f"blob {key!r} already exists") from None
        except OSError:
            # Staging on another file system, or no hard links there: check, then move or copy.
            if target.exists():
                staged.unlink(missing_ok=True)
                raise FileExistsError(f"blob {key!r} already exists") from None
            try:
                os.replace(staged, target)
            except OSError:
                shutil.copyfile(staged, target)
        staged.unlink(missing_ok=True)
        if durable:
            self.make_durable([key])

    def make_durable(self, keys: Sequence[str]) -> None:
        """fsync each file, each distinct directory once, and the parents of the fresh
        directories above them (so the new names survive a crash too), all at once (module
        docstring); the first failure is raised once all are done."""
        files = [self.path(key) for key in keys]
        with self._fresh_lock:
            fresh = [
                directory
                for directory in dict.fromkeys(a for f in files for a in f.parents)
                if directory in self._fresh
            ]
        targets = list(
            dict.fromkeys([*files, *(f.parent for f in files), *(d.parent for d in fresh)])
        )
        if not targets:
            return
        self._sync(targets)
        if fresh:
            with self._fresh_lock:
                self._fresh.difference_update(fresh)
                if len(self._known) + len(fresh) > KNOWN_DIRECTORIES:
                    self._known.clear()
                self._known.update(fresh)

    def _sync(self, targets: list[Path]) -> None:
        pool = self._pool()
        pending: list[Future[None]] = [pool.submit(_fsync_path, t) for t in targets[1:]]
        error: BaseException | None = None
        try:
            _fsync_path(targets[0])  # one in this thread: a single-instance batch needs no hop
        except OSError as exc:
            error = exc
        for future in pending:
            failure = future.exception()
            if error is None and failure is not None:
                error = failure
        if error is not None:
            raise error

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        # A raw descriptor: a buffered file object would cost more than the 31 µs read.
        fd = os.open(self.path(key), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.path(key).open("rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        # Remove now-empty parent directories up to the root, so deleted studies leave no trace.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            with self._fresh_lock:
                self._known.discard(parent)
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def stat(self, key: str) -> BlobStat:
        return BlobStat(size=self.path(key).stat().st_size)

    def keys(self) -> Iterator[str]:
        for path in self.root.rglob("*"):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()
