"""Where Hounsfield spends its time: py-spy samples of a server run, summarised by function.

py-spy cannot attach to a running process in every sandbox, so the profiled server is started
as py-spy's child (`py-spy record -- python -m hounsfield.cli serve`) in a separate pass, and
the measured figures come from an unprofiled server.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def command(output: Path, rate: int = 200) -> list[str] | None:
    exe = py_spy()
    if exe is None:
        return None
    return [exe, "record", "--rate", str(rate), "--format", "raw", "--output", str(output), "--"]


def summarise(raw: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive shares of samples per function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")  # py-spy leaves idle threads out unless --idle
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"self": [], "inclusive": []}

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {"self": shares(own), "inclusive": shares(inclusive), "samples": [("total", total)]}
