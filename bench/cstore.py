"""C-STORE ingest on one association: instances/s into a fresh Hounsfield, durable or not.

`bench.run` uses the raw client of this module (`send_raw`) for its C-STORE figures against
both archives; this command compares clients and durability on Hounsfield alone.

    python -m bench.cstore [--count 500] [--clients raw,raw4,storescu,pynetdicom] [--durable both]
                           [--dimse-workers 1,2] [--repeat 3]

With several `--dimse-workers` values (the dimse_workers setting) and `--repeat`, the runs
alternate between them (1, 2, 1, 2, ...), so a change in the machine's load affects both alike.

Every (durability, client) pair gets a fresh server and data directory. Clients:

- `raw`: a minimal blocking-socket SCU in this process (one PDU per 128 KiB fragment, waits for
  each C-STORE-RSP): the closest to the server's own capacity, as no real SCU is faster.
  `raw4`: the same on four associations at once, each with a quarter of the files; `raw16` on
  sixteen (many modalities at once: what `dimse_workers` spreads evenly, ADR 0017).
- `storescu`: DCMTK, one process for all files (reads and re-encodes each file).
- `pynetdicom`: pynetdicom's SCU sending files as they are (its polling threads cost time).

The count is checked through QIDO-RS afterwards, so a fast run that lost instances fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import httpx

from bench import hounsfield as hounsfield_server
from bench import profile
from bench.data import CtSeriesSpec, ct_instances
from bench.scenarios import in_threads
from bench.servers import free_port

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
AE_TITLE = "HOUNSFIELD"


@dataclass
class Result:
    client: str
    durable: bool
    count: int
    seconds: float
    stored: int
    dimse_workers: int = 1

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def write_files(count: int, directory: Path) -> list[Path]:
    paths = []
    for n, instance in enumerate(ct_instances(CtSeriesSpec(studies=1, slices=count, kind=8))):
        path = directory / f"{n:05d}.dcm"
        path.write_bytes(instance.data)
        paths.append(path)
    return paths


# -- the raw client ---------------------------------------------------------------------------


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _associate_rq(called_aet: str) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2) proposing CT Image Storage in Explicit VR Little Endian."""
    context = _item(0x30, CT_IMAGE.encode()) + _item(0x40, EXPLICIT_LE.encode())
    user = _item(0x51, struct.pack(">I", 0)) + _item(0x52, b"1.2.826.0.1.3680043.8.498.77.9")
    body = (
        struct.pack(">HH", 1, 0)
        + called_aet.encode().ljust(16)
        + b"BENCH".ljust(16)
        + bytes(32)
        + _item(0x10, b"1.2.840.10008.3.1.1.1")
        + _item(0x20, bytes((1, 0, 0, 0)) + context)
        + _item(0x50, user)
    )
    return struct.pack(">BBI", 1, 0, len(body)) + body


def _recv_pdu(sock: socket.socket) -> tuple[int, bytes]:
    header = sock.recv(6, socket.MSG_WAITALL)
    pdu_type, _, length = struct.unpack(">BBI", header)
    return pdu_type, sock.recv(length, socket.MSG_WAITALL) if length else b""


def _pdata(control: int, fragment: bytes | memoryview) -> list[bytes | memoryview]:
    return [
        struct.pack(">BBIIBB", 4, 0, len(fragment) + 6, len(fragment) + 2, 1, control),
        fragment,
    ]


def _store_command(message_id: int, sop_uid: str) -> bytes:
    def element(number: int, value: bytes) -> bytes:
        return struct.pack("<HHI", 0, number, len(value)) + value

    uid = sop_uid.encode() + (b"\x00" if len(sop_uid) % 2 else b"")
    body = b"".join(
        (
            element(0x0002, CT_IMAGE.encode() + b"\x00"),
            element(0x0100, struct.pack("<H", 1)),
            element(0x0110, struct.pack("<H", message_id)),
            element(0x0700, struct.pack("<H", 0)),
            element(0x0800, struct.pack("<H", 0)),
            element(0x1000, uid),
        )
    )
    return element(0x0000, struct.pack("<I", len(body))) + body


def _dataset_of(path: Path) -> tuple[str, bytes]:
    return split_part10(path.read_bytes())


def split_part10(data: bytes) -> tuple[str, bytes]:
    """(SOP Instance UID, data set) of a Part 10 file as `bench.data` writes it (PS3.10 7.1:
    128-byte preamble, DICM, then the group 2 meta elements, led by their group length)."""
    (meta_length,) = struct.unpack_from("<I", data, 140)
    meta_end = 144 + meta_length
    # Media Storage SOP Instance UID, as the file meta holds it.
    pos = data.index(b"\x02\x00\x03\x00UI", 132)
    (length,) = struct.unpack_from("<H", data, pos + 6)
    sop_uid = data[pos + 8 : pos + 8 + length].rstrip(b"\x00 ").decode()
    return sop_uid, data[meta_end:]


def run_raw(paths: list[Path], port: int, associations: int = 1) -> float:
    objects = [_dataset_of(path) for path in paths]  # read before the clock starts
    return send_raw(objects, port, associations=associations)


def send_raw(
    objects: list[tuple[str, bytes]],
    port: int,
    *,
    associations: int = 1,
    called_aet: str = AE_TITLE,
) -> float:
    """Send (SOP Instance UID, data set) pairs on `associations` associations at once, each
    in its own thread with its share (blocking socket calls release the GIL, so the threads
    do not serialise); return the wall time from the first connect to the last release."""
    shares = [objects[i::associations] for i in range(associations)]
    return in_threads([partial(_raw_association, share, port, called_aet) for share in shares])


def _raw_association(
    objects: list[tuple[str, bytes]], port: int, called_aet: str, max_pdu: int = 131072
) -> None:
    """One association: each C-STORE-RQ (PS3.7 9.3.1) in PDUs no larger than the peer's
    Maximum Length (PS3.8 D.1), then wait for its C-STORE-RSP and check Status is Success."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(_associate_rq(called_aet))
    pdu_type, body = _recv_pdu(sock)
    assert pdu_type == 2, "association not accepted"
    at = body.find(b"\x51\x00\x00\x04")  # Maximum Length sub-item of the A-ASSOCIATE-AC
    peer_max = struct.unpack_from(">I", body, at + 4)[0] if at >= 0 else 0
    fragment = min(max_pdu, peer_max or max_pdu) - 6
    for message_id, (sop_uid, dataset) in enumerate(objects, start=1):
        parts = _pdata(3, _store_command(message_id, sop_uid))
        view = memoryview(dataset)
        for start_at in range(0, len(view), fragment):
            last = start_at + fragment >= len(view)
            parts += _pdata(2 if last else 0, view[start_at : start_at + fragment])
        for start_at in range(0, len(parts), 512):  # at most IOV_MAX (1024) buffers a call
            sock.sendmsg(parts[start_at : start_at + 512])
        pdu_type, body = _recv_pdu(sock)
        assert pdu_type == 4 and _status(body) == 0, (pdu_type, hex(_status(body)))
    sock.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))
    _recv_pdu(sock)
    sock.close()


def _status(pdata_body: bytes) -> int:
    """Status (0000,0900) of the response command in a P-DATA-TF of one PDV, found by walking
    the elements: a byte search also matches inside Message ID Being Responded To 0x0209."""
    pos = 6  # PDV item length, context id, control header
    while pos + 8 <= len(pdata_body):
        group, element, length = struct.unpack_from("<HHI", pdata_body, pos)
        if (group, element) == (0, 0x0900):
            return int(struct.unpack_from("<H", pdata_body, pos + 8)[0])
        pos += 8 + length
    return -1


def run_storescu(paths: list[Path], port: int, extra_env: dict[str, str] | None = None) -> float:
    extra_env = extra_env or {}
    tool = shutil.which("storescu")
    if tool is None:
        raise RuntimeError("storescu (DCMTK) is not installed")
    started = time.perf_counter()
    subprocess.run(
        [tool, "-aec", AE_TITLE, "-xe", "127.0.0.1", str(port), *map(str, paths)],
        check=True,
        capture_output=True,
        env={**os.environ, **extra_env},
    )
    return time.perf_counter() - started


def run_pynetdicom(paths: list[Path], port: int) -> float:
    from pynetdicom import AE, _config

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title="BENCH")
    ae.add_requested_context(CT_IMAGE, EXPLICIT_LE)
    started = time.perf_counter()
    assoc = ae.associate("127.0.0.1", port, ae_title=AE_TITLE, max_pdu=0)
    assert assoc.is_established
    for path in paths:
        status = assoc.send_c_store(path)
        assert int(status.Status) == 0
    assoc.release()
    return time.perf_counter() - started


CLIENTS = {
    "raw": run_raw,
    "raw4": lambda paths, port: run_raw(paths, port, associations=4),
    "raw16": lambda paths, port: run_raw(paths, port, associations=16),
    "storescu": run_storescu,
    # DCMTK sets TCP_NODELAY only when this variable asks for it (dcmnet/dulfsm.cc)
    "storescu-nodelay": lambda paths, port: run_storescu(paths, port, {"TCP_NODELAY": "1"}),
    "pynetdicom": run_pynetdicom,
}


def reference_rate(paths: list[Path], workdir: Path) -> float | None:
    """The raw client against DCMTK's storescp (writes files, no index, no fsync), in the same
    run: the ratio to it is what stays meaningful on a busy machine."""
    tool = shutil.which("storescp")
    if tool is None:
        return None
    out = workdir / "storescp"
    out.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [tool, "-aet", AE_TITLE, "-od", str(out), "-pm", "+xe", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TCP_NODELAY": "1"},  # DCMTK reads it (dcmnet/dulfsm.cc)
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return len(paths) / run_raw(paths, port)
    finally:
        process.terminate()
        process.wait(timeout=10)


def count_stored(url: str) -> int:
    response = httpx.get(f"{url}/dicom-web/series", params={"limit": "10"}, timeout=30)
    response.raise_for_status()
    return sum(int(row["00201209"]["Value"][0]) for row in response.json())


def _print_profile(summary: dict[str, object], top: int = 12) -> None:
    part = summary.get("cstore")
    if not isinstance(part, dict):
        print("  py-spy: no C-STORE samples")
        return
    print(f"  py-spy, {part['samples']} busy samples of the C-STORE path, self:")
    for name, share in part["self"][:top]:
        print(f"    {share:5.1f}%  {name}")
    print("  inclusive, Hounsfield's functions:")
    for name, share in part["hounsfield_inclusive"][:top]:
        print(f"    {share:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--clients", default="raw,raw4,storescu,pynetdicom")
    parser.add_argument("--durable", choices=["true", "false", "both"], default="both")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--dimse-workers",
        default="1",
        help="comma-separated dimse_workers values to compare (HOUNSFIELD_DIMSE_WORKERS)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the values")
    parser.add_argument(
        "--reference", action="store_true", help="also time the raw client against storescp"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each server under py-spy and print where its busy samples are (figures slower)",
    )
    args = parser.parse_args()
    durabilities = {"true": [True], "false": [False], "both": [True, False]}[args.durable]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hounsfield-cstore-") as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        paths = write_files(args.count, files)
        size = sum(p.stat().st_size for p in paths) / len(paths)
        print(f"{len(paths)} CT instances of {size / 1024:.0f} KiB")
        if args.reference:
            rate = reference_rate(paths, Path(tmp))
            if rate is not None:
                print(
                    f"{'storescp':>10}  (DCMTK, raw client, no index, no fsync)  {rate:7.1f} inst/s"
                )
        workers = [int(w) for w in args.dimse_workers.split(",")]
        rounds = [
            (durable, client, w, r)
            for r in range(args.repeat)
            for durable in durabilities
            for client in args.clients.split(",")
            for w in workers
        ]
        for n, (durable, client, dimse_workers, _) in enumerate(rounds):
            run_dir = Path(tmp) / f"{client}-{durable}-{n}"
            run_dir.mkdir()
            raw = run_dir / "profile.txt" if args.profile else None
            server = hounsfield_server.start(
                run_dir / "data",
                durable=durable,
                profile_to=raw,
                settings={"HOUNSFIELD_DIMSE_WORKERS": str(dimse_workers)}
                if dimse_workers != 1
                else None,
            )
            try:
                seconds = CLIENTS[client](paths, server.dimse_port)
                stored = count_stored(server.base_url)
            except (AssertionError, AttributeError, subprocess.CalledProcessError) as exc:
                # pynetdicom's SCU occasionally loses a response under load (ADR 0007)
                print(f"{client:>10}  durable={str(durable).lower():5}  failed: {exc!r}")
                continue
            finally:
                server.stop()
            if raw is not None and raw.exists():
                _print_profile(profile.summarise(raw))
            result = Result(client, durable, len(paths), seconds, stored, dimse_workers)
            results.append(result)
            print(
                f"{client:>10}  durable={str(durable).lower():5}  "
                f"dimse_workers={dimse_workers}  "
                f"{result.rate:7.1f} inst/s  ({seconds:.2f} s, {stored} stored)",
                flush=True,
            )
            if stored != len(paths):
                raise SystemExit(f"{client}: {stored} of {len(paths)} instances stored")
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(r), "rate": r.rate} for r in results], indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
