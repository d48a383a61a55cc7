"""DIMSE acceptor processes for `dimse_workers` > 1 (docs/adr/0017-dimse-workers.md).

The DIMSE server is one asyncio loop; the Python work of each instance (PDU handling, header
walk, index rows) holds the GIL, so associations served by one process share one core. With
N workers, `serve` starts N processes that each open the archive from the same settings (as
HTTP workers do) and listen on the DIMSE port(s) with SO_REUSEPORT: the kernel hashes each
incoming connection to one of the listening sockets, so associations are spread over the
processes, and an association stays in the process that accepted it from A-ASSOCIATE-RQ to
release (PS3.8 9.2), which is all the DIMSE services need: no state outlives an association
except what is in the index.

Workers are started with the `spawn` method (a fresh interpreter: the parent may already run
threads), after the parent has migrated the index once. On SIGTERM a worker closes
its DIMSE server first (aborting open associations only after they had the chance to finish,
as the single-process server does) and then its archive. The parent stops them on shutdown
and restarts one that dies, with a growing delay when it dies right after starting. Workers
ignore SIGINT: Ctrl-C reaches the whole process group, and the parent stops them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import uvicorn

from hounsfield.config import Settings

log = logging.getLogger(__name__)

#: Seconds a worker has to open the archive and listen before start-up fails.
START_TIMEOUT = 60.0
#: Seconds a worker has to close its associations and archive on SIGTERM before SIGKILL.
STOP_TIMEOUT = 15.0
#: A worker that dies sooner than this after starting is restarted after a growing delay.
_STABLE_SECONDS = 5.0


def _worker_main(settings: Settings, number: int, ready: Connection) -> None:
    """The body of one worker process: serve DIMSE until SIGTERM or the parent dies.

    SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and the parent
    then stops the workers itself; a worker leaving on its own would look like a crash."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s",
    )
    from hounsfield.bootstrap import build_dimse_server, open_archive
    from hounsfield.cli.serve import start_dimse

    parent = os.getppid()
    archive = open_archive(settings)

    async def main() -> None:
        dimse = build_dimse_server(archive)
        await start_dimse(settings, dimse, reuse_port=True)
        ready.send(dimse.ports)
        ready.close()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)

        async def orphaned() -> None:
            # A parent killed with SIGKILL cannot stop us: leave rather than keep the port.
            while os.getppid() == parent:
                await asyncio.sleep(1.0)
            log.warning("the serve process %d is gone; DIMSE worker %d stops", parent, number)
            stop.set()

        watcher = asyncio.create_task(orphaned())
        await stop.wait()
        watcher.cancel()
        await dimse.close()

    try:
        config = uvicorn.Config(lambda: None, loop="auto")  # uvloop when available
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(main())
    finally:
        archive.close()


class DimseWorkers:
    """The parent's side: start, watch (restart), stop the DIMSE worker processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.count = settings.dimse_workers
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess | None] = [None] * self.count
        self._started_at = [0.0] * self.count
        self._failures = [0] * self.count
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()  # stop() may be called from two threads at once
        self._monitor: threading.Thread | None = None
        self._stopped = False

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._processes if p is not None and p.pid is not None]

    def _spawn(self, number: int) -> None:
        """Start worker `number` and wait until it listens (or fails)."""
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main,
            args=(self.settings, number, send),
            name=f"dimse-{number + 1}",
            daemon=False,
        )
        process.start()
        send.close()
        with self._lock:
            self._processes[number] = process
            self._started_at[number] = time.monotonic()
        ready = receive.poll(START_TIMEOUT)
        ports = receive.recv() if ready else None
        receive.close()
        if ports is None:
            raise RuntimeError(
                f"DIMSE worker {number + 1} (pid {process.pid}) did not start "
                f"(exit code {process.exitcode}); see the log above"
            )
        log.info("DIMSE worker %d (pid %d) listening on %s", number + 1, process.pid, ports)

    def start(self) -> None:
        try:
            for number in range(self.count):
                self._spawn(number)
        except BaseException:
            self.stop()
            raise
        self._monitor = threading.Thread(target=self._watch, name="dimse-workers", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        """Restart a worker that died; the others keep serving meanwhile."""
        while not self._stopping.wait(0.5):
            for number in range(self.count):
                with self._lock:
                    process = self._processes[number]
                if process is None or process.is_alive() or self._stopping.is_set():
                    continue
                lived = time.monotonic() - self._started_at[number]
                self._failures[number] = (
                    0 if lived > _STABLE_SECONDS else self._failures[number] + 1
                )
                delay = (
                    min(30.0, 0.5 * 2 ** self._failures[number]) if self._failures[number] else 0
                )
                log.error(
                    "DIMSE worker %d (pid %s) exited with code %s after %.0f s; restarting%s",
                    number + 1,
                    process.pid,
                    process.exitcode,
                    lived,
                    f" in {delay:.1f} s" if delay else "",
                )
                if self._stopping.wait(delay):
                    return
                try:
                    self._spawn(number)
                except Exception:
                    log.exception("DIMSE worker %d could not be restarted", number + 1)

    def stop(self) -> None:
        """SIGTERM every worker (each closes its associations, then its archive), wait for
        them, and SIGKILL any that did not exit within STOP_TIMEOUT."""
        with self._stop_lock:
            self._stop()

    def _stop(self) -> None:
        self._stopping.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=START_TIMEOUT)
        with self._lock:
            processes = [p for p in self._processes if p is not None]
        for process in processes:
            if process.is_alive():
                with contextlib.suppress(OSError):
                    process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("DIMSE worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
        if processes and not self._stopped:
            self._stopped = True
            log.info("DIMSE workers stopped: %s", [p.exitcode for p in processes])
