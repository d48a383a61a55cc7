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
