"""`hounsfield check`: integrity of the stored bytes and of the index."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hounsfield.bootstrap import open_archive
from hounsfield.config import Settings
from hounsfield.services.integrity import Problem


def run_check(settings: Settings, *, repair: bool = False, progress: bool = True) -> list[Problem]:
    console = Console(stderr=True)
    archive = open_archive(settings)
    problems: list[Problem] = []
    try:
        integrity = archive.services.integrity
        instances = list(integrity.instances())
        indexed_keys = {i.blob_key for i in instances} | integrity.derived_keys()
        columns = (
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=not progress, console=console) as bar:
            task = bar.add_task("check", total=len(instances))
            for instance in instances:
                problem = integrity.verify(instance)
                if problem is not None:
                    problems.append(problem)
                bar.advance(task)
        orphans = integrity.orphans(indexed_keys, lambda key: False)
        if repair:
            for orphan in orphans:
                archive.blobs.delete(orphan.key)
            if orphans:
                console.print(f"removed {len(orphans)} unreferenced blobs")
        else:
            problems.extend(orphans)
    finally:
        archive.close()
    for problem in problems:
        console.print(f"{problem.kind}: {problem.key}: {problem.detail}")
    console.print(
        f"checked {len(instances)} instances: "
        + ("no problems" if not problems else f"{len(problems)} problem(s)")
    )
    return problems
