"""Orthanc, the reference archive: Debian's packages, run as a plain process per bench run.

The configuration keeps Orthanc's defaults except what a fair, isolated run needs: fresh
storage and index directories, free loopback ports, the DICOMweb plugin, no authentication, no
compression of stored files, and TCP_NODELAY for its DICOM sockets. Orthanc's defaults relevant
to the comparison are recorded in `notes` (it fsyncs every stored file; its SQLite index runs
without a full sync per commit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from bench.servers import RunningArchive, free_port, wait_ready

PACKAGES = ("orthanc", "orthanc-dicomweb")
AE_TITLE = "BENCHORTHANC"
#: Orthanc's DICOM server is DCMTK's, which leaves Nagle's algorithm on unless this variable is
#: set (dcmnet/dulfsm.cc): every C-STORE-RSP or C-FIND response then waits for the client's
#: delayed ACK (~40 ms). Measured here: C-STORE 20 -> 160 inst/s, C-FIND p50 44 -> 2 ms.
DCMTK_ENV = {"TCP_NODELAY": "1"}
PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = PLUGIN_DIR / "libOrthancDicomWeb.so"


class OrthancUnavailableError(RuntimeError):
    pass


def installed() -> bool:
    return shutil.which("Orthanc") is not None


def dicomweb_installed() -> bool:
    return DICOMWEB_PLUGIN.exists()


def ensure_installed(log: list[str]) -> None:
    """Install Debian's packages when missing and running as root; raise if still missing."""
    if installed() and dicomweb_installed():
        return
    if os.geteuid() != 0:
        raise OrthancUnavailableError(
            "Orthanc is not installed and this is not root: "
            "run `apt-get install -y orthanc orthanc-dicomweb` first"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    wanted = [p for p in PACKAGES if _available(p)]
    missing = sorted(set(PACKAGES) - set(wanted))
    if missing:
        log.append(f"not available in this Debian release: {', '.join(missing)}")
    subprocess.run(["apt-get", "install", "-y", "-qq", *wanted], check=True, env=env)
    if not installed():
        raise OrthancUnavailableError("apt-get did not install the Orthanc command")


def _available(package: str) -> bool:
    result = subprocess.run(
        ["apt-cache", "show", package], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and "Package:" in result.stdout


def version() -> str:
    out = subprocess.run(["Orthanc", "--version"], capture_output=True, text=True, check=False)
    first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else "Orthanc (unknown)"
    plugin = _package_version("orthanc-dicomweb")
    return f"{first}; orthanc-dicomweb {plugin}" if plugin else first


def _package_version(package: str) -> str | None:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or None if out.returncode == 0 else None


def config(workdir: Path, http_port: int, dicom_port: int) -> dict[str, object]:
    plugins = [str(DICOMWEB_PLUGIN)] if dicomweb_installed() else []
    return {
        "Name": "BENCH-ORTHANC",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "TemporaryDirectory": str(workdir / "tmp"),
        "StorageCompression": False,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": AE_TITLE,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "Plugins": plugins,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }


def start(workdir: Path) -> RunningArchive:
    if not installed():
        raise OrthancUnavailableError("the Orthanc command is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("storage", "index", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config(workdir, http_port, dicom_port), indent=2))
    log_path = workdir / "orthanc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["Orthanc", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, **DCMTK_ENV},
        )
    base = f"http://127.0.0.1:{http_port}"
    wait_ready(process, f"{base}/system", log_path)
    notes = [
        "Debian package, plain process, defaults except fresh directories, loopback ports, "
        'DICOMweb plugin, no auth, "StorageCompression": false, and TCP_NODELAY=1 in its '
        "environment (DCMTK otherwise delays every DIMSE response by ~40 ms)",
        'defaults kept: "SyncStorageArea": true (fsync of every stored file), '
        'SQLite index in WAL mode with "synchronous=NORMAL" (no fsync per commit), '
        '"StorageAccessOnFind": "Always", DICOMweb "SeriesMetadata": "Full"',
    ]
    if not dicomweb_installed():
        notes.append("orthanc-dicomweb missing: only Orthanc's own REST API was measured")
    return RunningArchive(
        name="Orthanc",
        version=version(),
        base_url=base,
        dicomweb=f"{base}/dicom-web",
        process=process,
        log_path=log_path,
        notes=notes,
        aet=AE_TITLE,
        dimse_port=dicom_port,
    )


def declare_modality(archive: RunningArchive, aet: str, port: int = 104) -> None:
    """Orthanc answers C-FIND/C-GET/C-MOVE only from known modalities, and moves only to them
    (its DicomAlwaysAllowFind/Get/Move default to false): declare a bench client or target."""
    httpx.put(
        f"{archive.base_url}/modalities/{aet}",
        json={"AET": aet, "Host": "127.0.0.1", "Port": port},
        timeout=30,
    ).raise_for_status()
