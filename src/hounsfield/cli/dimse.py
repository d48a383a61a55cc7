"""`hounsfield echo | send | find | move`: the DIMSE SCU commands.

A remote AE is written `AET@HOST:PORT`, or as a bare AE title looked up in the remote AE
registry of the archive (admin API `/api/remote-aes/{aet}`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import click
import orjson
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from hounsfield.bootstrap import open_blobs, open_dicom_network, open_index
from hounsfield.config import Settings
from hounsfield.domain.qrmodel import Model
from hounsfield.ports.dicom_network import DicomNetworkError, OutgoingObject
from hounsfield.ports.index import RemoteAE
from hounsfield.services.dicom_send import DicomSendService, SendOutcome


def resolve(settings: Settings, target: str) -> RemoteAE:
    """`AET@HOST:PORT`, or an AE title of the remote AE registry."""
    if "@" in target:
        aet, _, address = target.partition("@")
        host, _, port = address.rpartition(":")
        if not aet or not host or not port.isdigit():
            raise click.BadParameter(f"{target!r}: expected AET@HOST:PORT")
        return RemoteAE(aet, host, int(port))
    index = open_index(settings.index_url, durable=settings.durable)
    try:
        found = index.get_remote_ae(target)
    finally:
        index.close()
    if found is None:
        raise click.BadParameter(f"{target!r} is not a registered AE (or use AET@HOST:PORT)")
    return found


def _service(settings: Settings) -> DicomSendService:
    return DicomSendService(
        open_dicom_network(settings), open_blobs("memory://"), calling_ae=settings.ae_title
    )


def run_echo(settings: Settings, target: str) -> int:
    remote = resolve(settings, target)
    try:
        status = _service(settings).echo(remote)
    except DicomNetworkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"C-ECHO {remote.aet}@{remote.host}:{remote.port}: status 0x{status:04X}")
    return 0 if status == 0 else 1


def _files(paths: Sequence[Path]) -> tuple[list[OutgoingObject], list[Path]]:
    found: list[OutgoingObject] = []
    skipped: list[Path] = []
    for path in paths:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            try:
                meta = read_file_meta_info(candidate)
                found.append(
                    OutgoingObject(
                        str(meta.MediaStorageSOPClassUID),
                        str(meta.MediaStorageSOPInstanceUID),
                        str(meta.TransferSyntaxUID),
                        candidate,
                    )
                )
            except (InvalidDicomError, AttributeError, OSError, ValueError):
                skipped.append(candidate)
    return found, skipped


def run_send(settings: Settings, paths: Sequence[Path], target: str, progress: bool) -> int:
    """C-STORE files and folders (PS3.10 files; others are reported and skipped)."""
    remote = resolve(settings, target)
    files, skipped = _files(paths)
    for path in skipped:
        click.echo(f"skipped (not a PS3.10 file): {path}", err=True)
    counts = dict.fromkeys(SendOutcome, 0)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    ) as bar:
        task = bar.add_task(f"C-STORE to {remote.aet}", total=len(files))

        def advance(result: object) -> None:
            bar.advance(task)

        results = _service(settings).send_files(remote, files, on_result=advance)
    for result in results:
        counts[result.outcome] += 1
        if result.outcome is not SendOutcome.COMPLETED:
            status = f"0x{result.status:04X}" if result.status is not None else "-"
            click.echo(
                f"{result.outcome.value}: {result.sop_instance_uid} {status} {result.reason}"
            )
    click.echo(
        f"completed {counts[SendOutcome.COMPLETED]}, warning {counts[SendOutcome.WARNING]}, "
        f"failed {counts[SendOutcome.FAILED]}, skipped {len(skipped)}"
    )
    return 1 if counts[SendOutcome.FAILED] or (skipped and not files) else 0


def identifier(keys: Sequence[str]) -> dict[str, object]:
    """`-k Keyword=value` (or `-k Keyword` for a return key) to a DICOM JSON identifier."""
    ds = Dataset()
    for key in keys:
        keyword, _, value = key.partition("=")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                setattr(ds, keyword.strip(), value)
        except (ValueError, UserWarning) as exc:
            raise click.BadParameter(f"{key!r}: {exc}") from exc
        if keyword.strip() not in ds:
            raise click.BadParameter(f"{keyword!r} is not a DICOM keyword")
    if "QueryRetrieveLevel" not in ds:
        ds.QueryRetrieveLevel = "STUDY"
    converted: dict[str, object] = ds.to_json_dict()
    return converted


def run_find(settings: Settings, target: str, keys: Sequence[str], model: Model) -> int:
    remote = resolve(settings, target)
    network = open_dicom_network(settings)
    count = 0
    try:
        for reply in network.find(
            remote,
            calling_ae=settings.ae_title,
            sop_class_uid=model.sop_class("find"),
            identifier=identifier(keys),  # type: ignore[arg-type]
        ):
            if reply.identifier is not None and reply.status in (0xFF00, 0xFF01):
                count += 1
                sys.stdout.write(orjson.dumps(reply.identifier).decode() + "\n")
            elif reply.status != 0:
                click.echo(f"C-FIND status 0x{reply.status:04X} {reply.error_comment}", err=True)
                return 1
    except DicomNetworkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{count} match(es)", err=True)
    return 0


def run_move(
    settings: Settings, study_uid: str, source: str, destination: str, model: Model
) -> int:
    """C-MOVE one study from `source` to the AE titled `destination` (PS3.4 C.4.2)."""
    remote = resolve(settings, source)
    network = open_dicom_network(settings)
    keys = identifier(["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study_uid}"])
    final = None
    try:
        for reply in network.move(
            remote,
            calling_ae=settings.ae_title,
            sop_class_uid=model.sop_class("move"),
            identifier=keys,  # type: ignore[arg-type]
            destination=destination,
        ):
            final = reply
            if reply.status == 0xFF00:
                c = reply.counts
                click.echo(
                    f"remaining {c.get('NumberOfRemainingSuboperations', '?')}, "
                    f"completed {c.get('NumberOfCompletedSuboperations', 0)}, "
                    f"failed {c.get('NumberOfFailedSuboperations', 0)}",
                    err=True,
                )
    except DicomNetworkError as exc:
        raise click.ClickException(str(exc)) from exc
    if final is None:
        raise click.ClickException("no C-MOVE response")
    c = final.counts
    click.echo(
        f"C-MOVE status 0x{final.status:04X}:"
        f" completed {c.get('NumberOfCompletedSuboperations', 0)}"
        f", failed {c.get('NumberOfFailedSuboperations', 0)}"
        f", warning {c.get('NumberOfWarningSuboperations', 0)} {final.error_comment}"
    )
    return 0 if final.status == 0 else 1
