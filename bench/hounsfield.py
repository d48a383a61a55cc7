"""Hounsfield, started as `python -m hounsfield.cli serve` on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hounsfield
from bench import profile
from bench.servers import RunningArchive, free_port, wait_ready

AE_TITLE = "HOUNSFIELD"  # the default ae_title


def start(
    data_dir: Path,
    *,
    durable: bool = True,
    label: str = "Hounsfield",
    profile_to: Path | None = None,
    settings: dict[str, str] | None = None,
) -> RunningArchive:
    """Start the server; with `profile_to`, under `py-spy record` writing raw stacks there.
    `settings` are extra HOUNSFIELD_* variables (e.g. a shared index and blob store)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port, dimse_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(data_dir),
        "HOUNSFIELD_HTTP_PORT": str(port),
        "HOUNSFIELD_DIMSE_PORT": str(dimse_port),
        "HOUNSFIELD_DURABLE": "true" if durable else "false",
        "HOUNSFIELD_LOG_LEVEL": "WARNING",
        **(settings or {}),
    }
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    with log_path.open("wb") as log:
        prefix = profile.command(profile_to) if profile_to is not None else []
        if prefix is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "hounsfield.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{base}/api/health", log_path)
    return RunningArchive(
        name=label,
        version=hounsfield.__version__,
        base_url=base,
        dicomweb=f"{base}/dicom-web",
        process=process,
        log_path=log_path,
        wrapped=profile_to is not None,
        aet=AE_TITLE,
        dimse_port=dimse_port,
        notes=[
            f"HOUNSFIELD_DURABLE={'true' if durable else 'false'}"
            + (" (fsync of blobs and WAL commits with synchronous=FULL)" if durable else ""),
            "one uvicorn worker (the embedded default), "
            + (
                "SQLite index, file blobs"
                if not set(settings or {}) - {"HOUNSFIELD_DIMSE_WORKERS"}
                else "shared index and blobs"
            ),
            *(
                [f"HOUNSFIELD_DIMSE_WORKERS={settings['HOUNSFIELD_DIMSE_WORKERS']}"]
                if settings and "HOUNSFIELD_DIMSE_WORKERS" in settings
                else []
            ),
        ],
    )
