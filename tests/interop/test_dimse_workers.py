"""`dimse_workers = 2`: two DIMSE acceptor processes on one port (SO_REUSEPORT).

DCMTK's storescu sends on many associations at once; every instance must be stored and
queryable whichever process took its association, and the associations must really have been
spread over both processes (the log names the process that accepted each calling AE), and
each association audited. C-FIND, C-MOVE (the destination registered through the HTTP admin
API, i.e. by another process) and storage commitment work on any worker, pynetdicom stores
through them, a worker that dies is restarted, SIGTERM to `serve` leaves no process behind and
the audit chain the three processes wrote verifies. The DICOM TLS port is served by both.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel

from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import (
    RunningServer,
    free_port,
    hounsfield_cli,
    require_tool,
    start_server,
    stop_server,
)
from tests.interop.dimse_support import count_instances, start_storescp
from tests.interop.dimse_support import suboperation_counts as counts
from tests.tlssupport import make_pki

pytestmark = pytest.mark.services
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"

#: With 16 associations hashed over 2 sockets, all on one has probability 2**-15.
ASSOCIATIONS = 16
PER_ASSOCIATION = 2

_LISTENING = re.compile(rb"DIMSE worker (\d+) \(pid (\d+)\) listening")
_ACCEPTED = re.compile(rb"dimse-\d+\[(\d+)\] \S+: association (\S+) -> \S+ from \S+ accepted")


def log_text(server: RunningServer) -> bytes:
    server.log.flush()
    return (server.data_dir.parent / f"server-{server.url.rsplit(':', 1)[1]}.log").read_bytes()


def worker_pids(server: RunningServer) -> dict[int, int]:
    """Worker number -> pid of its latest start, from the serve process's log."""
    return {int(n): int(pid) for n, pid in _LISTENING.findall(log_text(server))}


def acceptors(server: RunningServer) -> dict[str, int]:
    """Calling AE title -> pid of the process that accepted its association (DEBUG log)."""
    return {ae.decode(): int(pid) for pid, ae in _ACCEPTED.findall(log_text(server))}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    require_tool("storescu")
    running = start_server(
        tmp_path_factory.mktemp("dimse-workers") / "data",
        {"HOUNSFIELD_DIMSE_WORKERS": "2", "HOUNSFIELD_LOG_LEVEL": "DEBUG"},
    )
    try:
        yield running
    finally:
        if running.process.poll() is None:
            stop_server(running)


def storescu(server: RunningServer, calling_ae: str, *files: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            require_tool("storescu"),
            "-aet",
            calling_ae,
            "-aec",
            server.ae_title,
            "127.0.0.1",
            str(server.dimse_port),
            *map(str, files),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_listen_on_the_port(server: RunningServer) -> None:
    pids = worker_pids(server)
    assert sorted(pids) == [1, 2]
    assert server.process.pid not in pids.values()
    assert all(alive(pid) for pid in pids.values())


def test_parallel_storescu_associations_are_spread_and_all_stored(
    server: RunningServer, tmp_path: Path
) -> None:
    study = uid()
    jobs: dict[str, list[Path]] = {}
    for a in range(ASSOCIATIONS):
        files = []
        for n in range(PER_ASSOCIATION):
            ds = make_dataset(study_uid=study, instance_number=a * PER_ASSOCIATION + n + 1)
            path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
            path.write_bytes(to_bytes(ds))
            files.append(path)
        jobs[f"PARALLEL{a:02d}"] = files
    senders = [storescu(server, ae, *files) for ae, files in jobs.items()]
    for sender in senders:
        output, _ = sender.communicate(timeout=120)
        assert sender.returncode == 0, output
    assert count_instances(server.dicomweb, StudyInstanceUID=study) == (
        ASSOCIATIONS * PER_ASSOCIATION
    )
    accepted = acceptors(server)
    served_by = {accepted[ae] for ae in jobs}
    assert served_by == set(worker_pids(server).values())
    # PS3.15 A.5.3: one Instances Transferred message per association, whichever worker wrote it.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        audited = audit(server, study=study)
        if len(audited) >= ASSOCIATIONS:
            break
        time.sleep(0.2)
    assert sorted(r["user"] for r in audited if r["action"] == "C") == sorted(jobs)


def audit(server: RunningServer, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/audit", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def test_storage_commitment_on_any_worker(server: RunningServer, tmp_path: Path) -> None:
    """PS3.4 J.3: N-ACTION, then the N-EVENT-REPORT on the requesting association, from
    whichever process holds it; the check reads the index both workers write."""
    stored = []
    for n in range(2):
        ds = make_dataset()
        path = tmp_path / f"commit{n}.dcm"
        path.write_bytes(to_bytes(ds))
        stored.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID), path))
    sender = storescu(server, "COMMITSRC", *(p for _, _, p in stored))
    output, _ = sender.communicate(timeout=60)
    assert sender.returncode == 0, output

    def commit(number: int) -> tuple[int, list[str]]:
        reports: list[tuple[int, Dataset]] = []
        arrived = threading.Event()

        def on_report(event: Any) -> int:
            reports.append((int(event.request.EventTypeID), event.event_information))
            arrived.set()
            return 0x0000

        ae = AE(ae_title=f"COMMIT{number:02d}")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate(
            "127.0.0.1",
            server.dimse_port,
            ae_title=server.ae_title,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )
        assert assoc.is_established
        request = Dataset()
        request.TransactionUID = uid()
        request.ReferencedSOPSequence = []
        for sop_class, sop, _ in stored:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop
            request.ReferencedSOPSequence.append(item)
        try:
            status, _ = assoc.send_n_action(
                request, 1, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE
            )
            assert int(status.Status) == 0
            assert arrived.wait(20)
            time.sleep(0.5)  # let pynetdicom answer the report before releasing
        finally:
            assoc.release()
        event_type, info = reports[0]
        return event_type, [str(i.ReferencedSOPInstanceUID) for i in info.ReferencedSOPSequence]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(commit, range(4)))
    assert results == [(1, [sop for _, sop, _ in stored])] * 4


def test_pynetdicom_stores_on_any_worker(server: RunningServer) -> None:
    study = uid()

    def send(number: int) -> list[int]:
        ae = AE(ae_title=f"PYNET{number:02d}")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
        assert assoc.is_established
        try:
            datasets = [dcmread(BytesIO(to_bytes(make_dataset(study_uid=study)))) for _ in range(2)]
            return [int(assoc.send_c_store(ds).Status) for ds in datasets]
        finally:
            assoc.release()

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for batch in pool.map(send, range(8)) for s in batch]
    assert statuses == [0] * 16
    assert count_instances(server.dicomweb, StudyInstanceUID=study) == 16
    accepted = acceptors(server)
    assert {accepted[f"PYNET{n:02d}"] for n in range(8)} <= set(worker_pids(server).values())


def test_find_and_move_on_any_worker(server: RunningServer, tmp_path: Path) -> None:
    study = uid()
    sent = []
    for n in range(3):
        ds = make_dataset(study_uid=study, patient_id="P-WORKERS", instance_number=n + 1)
        path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        path.write_bytes(to_bytes(ds))
        sent.append(path)
    stored = storescu(server, "MOVESRC", *sent)
    output, _ = stored.communicate(timeout=60)
    assert stored.returncode == 0, output

    out = tmp_path / "moved"
    destination, port = start_storescp(out)
    try:
        response = httpx.put(
            f"{server.url}/api/remote-aes/DEST", json={"host": "127.0.0.1", "port": port}
        )
        assert response.status_code in (200, 201), response.text

        def scu(tool: str, calling_ae: str, *args: str) -> str:
            done = subprocess.run(
                [
                    require_tool(tool),
                    *("-aet", calling_ae, "-aec", server.ae_title, *args),
                    *("127.0.0.1", str(server.dimse_port)),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout + done.stderr

        def find(number: int) -> int:
            folder = tmp_path / f"find{number}"
            folder.mkdir()
            scu(
                "findscu",
                f"FIND{number:02d}",
                "-S",
                "-X",
                "-od",
                str(folder),
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                "PatientID=P-WORKERS",
                "-k",
                "StudyInstanceUID",
                "-k",
                "NumberOfStudyRelatedInstances",
            )
            found = [dcmread(p) for p in folder.glob("rsp*.dcm")]
            assert [d.StudyInstanceUID for d in found] == [study]
            return int(found[0].NumberOfStudyRelatedInstances)

        def move(number: int) -> dict[str, int]:
            output = scu(
                "movescu",
                f"MOVE{number:02d}",
                "-d",
                "-S",
                "-aem",
                "DEST",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                f"StudyInstanceUID={study}",
            )
            return counts(output)

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(find, range(8))) == [3] * 8
            moved = list(pool.map(move, range(8)))
        assert moved == [{"Completed": 3, "Failed": 0, "Warning": 0}] * 8
        accepted = acceptors(server)
        pids = set(worker_pids(server).values())
        assert {accepted[f"FIND{n:02d}"] for n in range(8)} <= pids
        assert {accepted[f"MOVE{n:02d}"] for n in range(8)} <= pids
        received = {dcmread(p).SOPInstanceUID for p in out.iterdir()}
        assert received == {dcmread(p).SOPInstanceUID for p in sent}
    finally:
        destination.terminate()
        destination.wait(timeout=10)


def test_a_dead_worker_is_restarted(server: RunningServer, tmp_path: Path) -> None:
    before = worker_pids(server)
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker_pids(server)[1] == before[1]:
        time.sleep(0.1)
    after = worker_pids(server)
    assert after[1] != before[1] and alive(after[1])
    assert after[2] == before[2]
    assert b"DIMSE worker 1 (pid %d) exited with code -9" % before[1] in log_text(server)
    ds = make_dataset()
    path = tmp_path / "after-restart.dcm"
    path.write_bytes(to_bytes(ds))
    sender = storescu(server, "AFTERRESTART", path)
    output, _ = sender.communicate(timeout=60)
    assert sender.returncode == 0, output
    assert count_instances(server.dicomweb, SOPInstanceUID=ds.SOPInstanceUID) == 1


def test_sigterm_stops_every_worker(server: RunningServer) -> None:
    """Last in this module: SIGTERM to the serve process alone, as a service manager sends it,
    not to its process group; the workers must go with it."""
    pids = list(worker_pids(server).values())
    os.kill(server.process.pid, signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down, as with one process.
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]
    log = log_text(server)
    server.log.close()
    # Every worker exited on its own (code 0, not killed), before the HTTP side closed.
    assert b"DIMSE workers stopped: [0, 0]" in log
    assert log.index(b"DIMSE workers stopped") < log.index(b"Application shutdown complete")
    # The audit trail written by three processes is one unbroken hash chain (ADR 0014).
    verified = hounsfield_cli(server.data_dir, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_both_workers_serve_the_dicom_tls_port(tmp_path: Path) -> None:
    """PS3.15 Annex B: the DICOM TLS listener is in every worker too."""
    pki = make_pki(tmp_path / "pki")
    tls_port = free_port()
    server = start_server(
        tmp_path / "data",
        {
            "HOUNSFIELD_DIMSE_WORKERS": "2",
            "HOUNSFIELD_LOG_LEVEL": "DEBUG",
            "HOUNSFIELD_DIMSE_TLS_PORT": str(tls_port),
            "HOUNSFIELD_TLS_CERT_FILE": str(pki.server_cert),
            "HOUNSFIELD_TLS_KEY_FILE": str(pki.server_key),
            "HOUNSFIELD_TLS_CA_FILE": str(pki.ca),
        },
    )
    try:
        listening = re.findall(
            rb"DIMSE worker \d+ \(pid \d+\) listening on \[(\d+), (\d+)\]", log_text(server)
        )
        assert sorted(listening) == [(str(server.dimse_port).encode(), str(tls_port).encode())] * 2
        study = uid()
        senders = []
        for n in range(8):
            path = tmp_path / f"tls{n}.dcm"
            path.write_bytes(to_bytes(make_dataset(study_uid=study)))
            senders.append(
                subprocess.Popen(
                    [
                        require_tool("storescu"),
                        *("+tla", "+cf", str(pki.ca), "-aet", f"TLS{n:02d}"),
                        *("-aec", server.ae_title, "127.0.0.1", str(tls_port), str(path)),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        for sender in senders:
            output, _ = sender.communicate(timeout=120)
            assert sender.returncode == 0, output
        assert count_instances(server.dicomweb, StudyInstanceUID=study) == 8
        accepted = acceptors(server)
        assert {accepted[f"TLS{n:02d}"] for n in range(8)} <= set(worker_pids(server).values())
    finally:
        stop_server(server)


def test_ctrl_c_stops_the_workers_in_order(tmp_path: Path) -> None:
    """Ctrl-C in a terminal sends SIGINT to the whole process group: the workers leave it to
    `serve`, which stops them (no worker is seen dying and restarted on the way out)."""
    server = start_server(tmp_path / "data", {"HOUNSFIELD_DIMSE_WORKERS": "2"})
    try:
        pids = list(worker_pids(server).values())
        os.killpg(server.process.pid, signal.SIGINT)
        server.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.1)
        assert not [pid for pid in pids if alive(pid)]
        log = log_text(server)
        assert b"DIMSE workers stopped: [0, 0]" in log
        assert b"restarting" not in log
    finally:
        if server.process.poll() is None:
            stop_server(server)
        server.log.close()
