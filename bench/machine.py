"""Is the machine quiet enough to measure? Other work on the same cores skews every figure."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of all cores busy over `seconds` (0..1), from /proc/stat."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total else 0.0


def load_average() -> float:
    return os.getloadavg()[0]


def wait_quiet(
    max_wait: float, threshold: float = 0.15, say: Callable[[str], None] | None = None
) -> float:
    """Wait (at most `max_wait` seconds) until the cores are less than `threshold` busy;
    return the last busy share seen."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        if say is not None:
            say(f"machine busy ({busy:.0%} of the cores): waiting for a quiet moment")
        time.sleep(10)
        busy = cpu_busy()
    return busy


def _stat_fields(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def our_ticks() -> int:
    """CPU ticks of this process, its finished children (cutime, cstime) and its live
    descendants: everything the bench and the servers it started have used."""
    me = _stat_fields(os.getpid())
    ticks = sum(int(x) for x in me[11:15]) if me else 0
    stack = _children(os.getpid())
    while stack:
        pid = stack.pop()
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
        stack += _children(pid)
    return ticks


class CpuMeter:
    """How much of the cores other processes used while a scenario ran.

    Total busy time comes from /proc/stat, the bench's own (with its servers) from
    /proc/<pid>/stat; the rest is someone else's.
    """

    def __init__(self) -> None:
        self._total0, self._idle0 = _cpu_times()
        self._ours0 = our_ticks()

    def others(self) -> float:
        total1, idle1 = _cpu_times()
        ours1 = our_ticks()
        total = total1 - self._total0
        if not total:
            return 0.0
        busy = total - (idle1 - self._idle0)
        return max(0.0, (busy - (ours1 - self._ours0)) / total)


def cpu_ms(pids: list[int]) -> float:
    """CPU time (user + system) the live processes `pids` have used so far, in milliseconds."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")
