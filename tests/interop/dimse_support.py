"""Helpers for DIMSE tests: a corpus of pydicom's test files, raw upper-layer PDUs, a DCMTK
storescp peer, and checks against the server's DICOMweb side."""

from __future__ import annotations

import io
import re
import socket
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from hounsfield.domain.pdu import (
    HEADER,
    ContextResult,
    ContextResultCode,
    PduType,
    decode_associate_rq,
    encode_associate_ac,
)
from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import free_port, require_tool

#: (pydicom test file, DCMTK storescu option proposing its transfer syntax)
CORPUS: list[tuple[str, str]] = [
    ("CT_small.dcm", "-xe"),  # CT, explicit VR LE
    ("MR_small_implicit.dcm", "-xi"),  # MR, implicit VR LE
    ("MR_small_bigendian.dcm", "-xb"),  # explicit VR BE
    ("image_dfl.dcm", "-xd"),  # SC, deflated
    ("MR_small_RLE.dcm", "-xr"),  # RLE
    ("MR_small_jp2klossless.dcm", "-xv"),  # JPEG 2000 lossless
    ("JPEG2000.dcm", "-xw"),  # JPEG 2000
    ("MR_small_jpeg_ls_lossless.dcm", "-xt"),  # JPEG-LS lossless
    ("JPEGLSNearLossless_08.dcm", "-xu"),  # JPEG-LS near-lossless
    ("SC_rgb_jpeg_dcmtk.dcm", "-xy"),  # JPEG baseline
    ("JPGExtended.dcm", "-xx"),  # JPEG extended
    ("SC_rgb_jpeg_gdcm.dcm", "-xs"),  # JPEG lossless SV1
    ("rtplan.dcm", "-xi"),  # RT Plan
    ("rtdose.dcm", "-xi"),  # RT Dose, multi-frame
    ("reportsi.dcm", "-xe"),  # Basic Text SR
    ("waveform_ecg.dcm", "-xe"),  # 12-lead ECG waveform
    ("liver_1frame.dcm", "-xe"),  # Segmentation
    ("examples_ybr_color.dcm", "-xy"),  # US, JPEG baseline
]

HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K = "1.2.840.10008.1.2.4.203"
MPEG4 = "1.2.840.10008.1.2.4.102"
HEVC = "1.2.840.10008.1.2.4.107"


def unique_copy(name: str, directory: Path) -> Path:
    """A copy of a pydicom test file with a fresh SOP Instance UID, in its own syntax."""
    path = get_testdata_file(name)
    assert path is not None, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some test files carry deliberately odd values
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid()
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
            if keyword not in ds:
                setattr(ds, keyword, uid())  # PS3.4 requires them; a few test files lack them
        target = directory / f"{Path(name).stem}-{ds.SOPInstanceUID[-8:]}.dcm"
        ds.save_as(target, enforce_file_format=True)
    return target


def encapsulated_copy(transfer_syntax: str, directory: Path) -> Path:
    """A small image claiming an encapsulated syntax no test file uses (HTJ2K, MPEG, HEVC):
    the archive stores bytes as received, so the fragments need not decode."""
    ds = make_dataset()
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(200)), b"\x00\x01" * 33])
    ds["PixelData"].VR = "OB"
    target = directory / f"enc-{transfer_syntax}.dcm"
    target.write_bytes(to_bytes(ds, transfer_syntax))
    return target


def dataset_part(part10: bytes) -> bytes:
    """The bytes after the File Meta Information of a PS3.10 file (PS3.10 7.1)."""
    assert part10[128:132] == b"DICM"
    group, element, vr, length = struct.unpack_from("<HH2sH", part10, 132)
    assert (group, element, vr, length) == (2, 0, b"UL", 4)
    (meta_length,) = struct.unpack_from("<I", part10, 140)
    return part10[144 + meta_length :]


def start_storescp(out: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    """DCMTK storescp as AE DEST on a free port, writing what it receives into `out` as it
    came (+B, bit-preserving); `options` add to its command line (+xa: every syntax)."""
    tool = require_tool("storescp")
    port = free_port()
    out.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [tool, "-aet", "DEST", "-od", str(out), "+B", *options, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return process, port


def retrieve(dicomweb: str, ds: Dataset) -> bytes:
    url = (
        f"{dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    response = httpx.get(url, headers={"accept": "application/dicom; transfer-syntax=*"})
    assert response.status_code == 200, (response.status_code, response.text[:200])
    return response.content


def count_instances(dicomweb: str, **params: str) -> int:
    response = httpx.get(f"{dicomweb}/instances", params={"limit": "1000", **params})
    if response.status_code == 204:
        return 0
    assert response.status_code == 200, response.text
    return len(response.json())


def read_part10(data: bytes | Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else data)


# -- raw upper layer ---------------------------------------------------------------------


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def associate_rq(
    called: str,
    contexts: list[tuple[int, str, list[str]]],
    *,
    calling: str = "RAWSCU",
    max_length: int = 16384,
    user_items: bytes = b"",
) -> bytes:
    """An A-ASSOCIATE-RQ; `user_items` are extra User Information sub-items (role selection,
    extended negotiation, PS3.7 D.3.3)."""
    items = [_item(0x10, b"1.2.840.10008.3.1.1.1")]
    for context_id, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, ts.encode()) for ts in syntaxes)
        items.append(_item(0x20, bytes((context_id, 0, 0, 0)) + sub))
    user = _item(0x51, struct.pack(">I", max_length)) + _item(0x52, b"1.2.3.4") + user_items
    items.append(_item(0x50, user))
    body = (
        struct.pack(">HH", 1, 0)
        + called.encode().ljust(16)
        + calling.encode().ljust(16)
        + bytes(32)
        + b"".join(items)
    )
    return struct.pack(">BBI", 1, 0, len(body)) + body


def role_item(sop_class_uid: str, *, scu: bool, scp: bool) -> bytes:
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4)."""
    uid = sop_class_uid.encode()
    return _item(0x54, struct.pack(">H", len(uid)) + uid + bytes((scu, scp)))


def pdata(context_id: int, control: int, fragment: bytes) -> bytes:
    return (
        struct.pack(">BBI", 4, 0, len(fragment) + 6)
        + struct.pack(">IBB", len(fragment) + 2, context_id, control)
        + fragment
    )


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    """(type, body) of the next PDU, or (0, b"") when the server closed the connection."""
    header = _recv_exactly(sock, 6)
    if len(header) < 6:
        return 0, b""
    pdu_type, _, length = struct.unpack(">BBI", header)
    return pdu_type, _recv_exactly(sock, length)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def drain_until_closed(sock: socket.socket) -> list[int]:
    """The types of the PDUs the server sends before closing."""
    types = []
    while True:
        pdu_type, _ = read_pdu(sock)
        if not pdu_type:
            return types
        types.append(pdu_type)


def suboperation_counts(output: str) -> dict[str, int]:
    """The last Completed/Failed/Warning Suboperations counts DCMTK's movescu/getscu printed
    (with -d)."""
    found = {}
    for name in ("Completed", "Failed", "Warning"):
        values = re.findall(rf"{name} Suboperations\s*:\s*(\d+)", output)
        if values:
            found[name] = int(values[-1])
    return found


# -- scripted acceptors ------------------------------------------------------------------


def recv_pdu(sock: socket.socket) -> tuple[int, bytes]:
    header = sock.recv(6, socket.MSG_WAITALL)
    if len(header) < 6:
        return 0, b""
    pdu_type, _, length = HEADER.unpack(header)
    return pdu_type, sock.recv(length, socket.MSG_WAITALL) if length else b""


class ScriptedPeer:
    """An acceptor on a free port that accepts every proposed context (in its first proposed
    transfer syntax, or `syntax` when given and proposed), grants every proposed SCP/SCU role,
    announces `max_length`, then runs `script(sock)` on the established association; for
    testing our SCU against peers that misbehave on cue."""

    def __init__(
        self,
        script: Callable[[socket.socket], None],
        max_length: int = 16384,
        syntax: str | None = None,
    ) -> None:
        self.script = script
        self.max_length = max_length
        self.syntax = syntax
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(30)
                pdu_type, body = recv_pdu(conn)
                assert pdu_type == PduType.A_ASSOCIATE_RQ
                request = decode_associate_rq(body)
                results = [
                    ContextResult(
                        c.id,
                        ContextResultCode.ACCEPTANCE,
                        self.syntax
                        if self.syntax in c.transfer_syntaxes
                        else c.transfer_syntaxes[0],
                    )
                    for c in request.contexts
                ]
                conn.sendall(
                    encode_associate_ac(
                        request,
                        results,
                        max_length=self.max_length,
                        implementation_class_uid="2.25.9",
                        implementation_version_name="SCRIPTED",
                        roles=list(request.roles.values()),
                    )
                )
                self.script(conn)
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()

    def join(self) -> None:
        self.thread.join(timeout=10)
        if self.error is not None:
            raise self.error


def drain(sock: socket.socket) -> None:
    """Read until the other side closes, as a peer does after A-ABORT (PS3.8 7.3.1)."""
    sock.settimeout(10)
    while sock.recv(65536):
        pass
