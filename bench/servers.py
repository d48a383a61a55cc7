"""What the two archive launchers share: free ports, readiness, and stopping by process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningArchive:
    """A server process started by the bench, with its DICOMweb root and its log file."""

    name: str
    version: str
    base_url: str
    dicomweb: str
    process: subprocess.Popen[bytes]
    log_path: Path
    notes: list[str] = field(default_factory=list)
    wrapped: bool = False  # the process is a wrapper (py-spy) whose child is the server
    aet: str = ""  # the DIMSE server's AE title and loopback port
    dimse_port: int = 0

    def server_pid(self) -> int:
        if self.wrapped:
            children = _children(self.process.pid)
            if children:
                return children[0]
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        if self.wrapped:  # stop the server; the wrapper then writes its output and exits
            for pid in _children(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
                return
            except subprocess.TimeoutExpired:
                pass
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def rss_mb(self) -> float | None:
        """Resident memory of the server process (Linux), for the report."""
        try:
            status = Path(f"/proc/{self.server_pid()}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def wait_ready(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode}; log tail:\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not answer {url} within {timeout:.0f} s (log: {log_path})")
