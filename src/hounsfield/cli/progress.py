"""The progress bar of long CLI commands: label, bar, done/total and time remaining (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def progress_bar(
    label: str, total: int, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; with `enabled` False nothing is drawn (`--quiet`, pipes)."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
