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


# Leaves where a thread waits rather than works (py-spy cannot always tell in a VM).
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py:81)", "wait (threading.py", "select (")
STARTUP = "<frozen importlib"

#: Frames that mark a stack as part of a scenario's work (handlers and the services they call).
MARKERS = {
    "stow": ("dicomweb/stow.py", "services/ingest.py", "services/staging.py", "blobs/file.py"),
    "metadata": ("retrieve_metadata", "RetrieveService.metadata"),
    "qido": ("dicomweb/qido.py", "services/query.py"),
    # the DIMSE server and what it calls (bench.cstore --profile runs nothing else)
    "cstore": ("frontends/dimse/", "services/ingest.py", "services/staging.py", "blobs/file.py"),
}


def _stacks(raw: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_LEAVES) or any(STARTUP in f for f in frames):
            continue
        out.append((frames, int(count_text)))
    return out


def summarise(raw: Path, top: int = 12) -> dict[str, object]:
    """Per scenario: the share of busy samples per function, self (leaf) and inclusive, and
    inclusive for Hounsfield's own functions; from py-spy's collapsed stacks."""
    stacks = _stacks(raw)
    busy = sum(n for _, n in stacks)
    out: dict[str, object] = {"busy_samples": busy}
    for scenario, markers in MARKERS.items():
        own: Counter[str] = Counter()
        ours: Counter[str] = Counter()
        total = 0
        for frames, count in stacks:
            if not any(m in f for f in frames for m in markers):
                continue
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                if "hounsfield/" in frame:
                    ours[frame] += count
        if not total:
            continue

        def shares(counter: Counter[str], total: int = total) -> list[tuple[str, float]]:
            return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

        out[scenario] = {
            "samples": total,
            "self": shares(own),
            "hounsfield_inclusive": shares(ours),
        }
    return out
