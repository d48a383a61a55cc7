"""The real server with its index in PostgreSQL, configured only through HOUNSFIELD_INDEX_URL
(issue 5): STOW-RS, QIDO-RS, WADO-RS metadata and DELETE end to end, two replicas sharing one
index and one blob directory, and `hounsfield migrate` against the same schema."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.builders import make_dataset, multipart, to_bytes
from tests.conftest import RunningServer, start_server, stop_server
from tests.contract.conftest import PostgresSchemas, require_postgres


@pytest.fixture(scope="module")
def index_url() -> Iterator[str]:
    url = require_postgres()
    schema = f"hf_e2e_{secrets.token_hex(6)}"
    try:
        yield f"{url}?schema={schema}&pool_max=4"
    finally:
        PostgresSchemas(url).drop(schema)


@pytest.fixture(scope="module")
def replicas(
    index_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningServer]]:
    """Two `hounsfield serve` processes, each with its own data directory (staging), sharing
    the PostgreSQL index and one blob directory, as replicas behind a load balancer would."""
    shared = tmp_path_factory.mktemp("pg-shared")
    env = {"HOUNSFIELD_INDEX_URL": index_url, "HOUNSFIELD_BLOB_URL": f"file://{shared}/blobs"}
    running: list[RunningServer] = []
    try:
        for n in range(2):
            data_dir = tmp_path_factory.mktemp(f"pg-replica-{n}") / "data"
            running.append(start_server(data_dir, env))
        yield running
    finally:
        for server in running:
            stop_server(server)


@pytest.fixture(scope="module")
def pg_server(replicas: list[RunningServer]) -> RunningServer:
    return replicas[0]


def test_stow_qido_metadata_delete_through_postgresql(pg_server: RunningServer) -> None:
    first = make_dataset(PatientName="Pg^Alice", PatientID="PG-1", Modality="MR")
    second = make_dataset(
        StudyInstanceUID=first.StudyInstanceUID,
        SeriesInstanceUID=first.SeriesInstanceUID,
        PatientName="Pg^Alice",
        PatientID="PG-1",
        Modality="MR",
        InstanceNumber=2,
    )
    body, content_type = multipart([to_bytes(first), to_bytes(second)])
    stored = httpx.post(
        pg_server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
    )
    assert stored.status_code == 200, stored.text
    assert not (pg_server.data_dir / "index.db").exists()  # the index is not SQLite

    found = httpx.get(
        pg_server.dicomweb + "/studies",
        params={"PatientName": "pg*", "ModalitiesInStudy": "MR", "includefield": "all"},
    )
    assert found.status_code == 200, found.text
    [study] = found.json()
    assert study["0020000D"]["Value"] == [first.StudyInstanceUID]
    assert study["00201208"]["Value"] == [2]  # NumberOfStudyRelatedInstances

    metadata = httpx.get(
        f"{pg_server.dicomweb}/studies/{first.StudyInstanceUID}"
        f"/series/{first.SeriesInstanceUID}/metadata"
    )
    assert metadata.status_code == 200, metadata.text
    assert sorted(m["00080018"]["Value"][0] for m in metadata.json()) == sorted(
        [first.SOPInstanceUID, second.SOPInstanceUID]
    )

    study_url = f"{pg_server.dicomweb}/studies/{first.StudyInstanceUID}"
    assert httpx.delete(study_url).status_code == 204
    assert httpx.get(study_url + "/metadata").status_code == 404
    gone = httpx.get(pg_server.dicomweb + "/studies", params={"PatientID": "PG-1"})
    assert gone.status_code == 204  # PS3.18 10.6.3: no matches


def test_migrate_command_finds_the_schema_up_to_date(
    pg_server: RunningServer, index_url: str
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOUNSFIELD_")},
        "HOUNSFIELD_DATA_DIR": str(pg_server.data_dir),
        "HOUNSFIELD_INDEX_URL": index_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "hounsfield.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_replicas_serve_one_archive(replicas: list[RunningServer]) -> None:
    """Stored through one replica, found and retrieved through the other; the same study
    stored through both at once is one study with every instance counted once."""
    first, second = replicas
    study = make_dataset(PatientID="PG-R")
    parts = [
        make_dataset(
            StudyInstanceUID=study.StudyInstanceUID,
            SeriesInstanceUID=study.SeriesInstanceUID,
            PatientID="PG-R",
            InstanceNumber=n,
        )
        for n in range(8)
    ]

    def stow(server: RunningServer, datasets: list[Any]) -> int:
        body, content_type = multipart([to_bytes(ds) for ds in datasets])
        return httpx.post(
            server.dicomweb + "/studies", content=body, headers={"content-type": content_type}
        ).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(stow, [first, second], [parts[:5], parts[3:]]))
    assert statuses == [200, 200] or sorted(statuses) == [200, 202], statuses

    for server in replicas:
        found = httpx.get(server.dicomweb + "/studies", params={"PatientID": "PG-R"})
        [row] = found.json()
        assert row["00201208"]["Value"] == [8]
    instance = (
        f"/studies/{study.StudyInstanceUID}/series/{study.SeriesInstanceUID}"
        f"/instances/{parts[0].SOPInstanceUID}"
    )
    got = httpx.get(
        second.dicomweb + instance, headers={"accept": "application/dicom; transfer-syntax=*"}
    )
    assert got.status_code == 200
    assert got.content == to_bytes(parts[0])
