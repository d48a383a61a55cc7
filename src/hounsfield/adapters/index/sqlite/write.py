"""The write path of ingest: begin and commit (two-phase ingest, DESIGN.md key idea 3).

Every function here runs inside a write transaction opened by the group committer and keeps
no state beyond its own call, so the committer can roll it back to a savepoint or run it
again. Parent rows (patient, study, series) are created by `commit`, never by `begin`: until
an instance is committed nothing about it is visible. Counts and the computed study
attributes (PS3.4 C.3.4: Number of ... Related ..., ModalitiesInStudy, SOPClassesInStudy) are
kept up to date here, so queries read them instead of aggregating at 1M instances.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hounsfield.adapters.index.sql.columns import (
    ISSUER_OF_PATIENT_ID,
    NAME_TAGS,
    Alias,
    column_values,
    first_text,
    name_folds,
    number_of_frames,
)
from hounsfield.adapters.index.sql.rows import (
    dumps,
    encode_bulk,
    encode_pixel,
    loads,
    merge_attrs,
)
from hounsfield.domain.errors import ConflictError
from hounsfield.domain.levels import PATIENT_ID
from hounsfield.domain.model import DicomJson
from hounsfield.ports.index import BeginOutcome, Event, NewInstance


def begin_instances(
    conn: sqlite3.Connection, instances: Sequence[NewInstance], now: float
) -> list[BeginOutcome]:
    """Classify each instance and record a pending row for the new ones.

    The SOP Instance UID identifies an instance within a partition (PS3.3 C.12.1.1.1): stored
    under the same study and series it is a duplicate; under another one, or in a series that
    belongs to another study (PS3.3 C.7.3.1: a series is in exactly one study), a conflict.
    """
    outcomes: list[BeginOutcome] = []
    for inst in instances:
        row = conn.execute(
            "SELECT state, study_uid, series_uid FROM instances"
            " WHERE partition = ? AND sop_uid = ?",
            (inst.partition, inst.sop_uid),
        ).fetchone()
        if row is not None:
            if row[0] == "pending":
                outcomes.append(BeginOutcome.IN_PROGRESS)
            elif (row[1], row[2]) == (inst.study_uid, inst.series_uid):
                outcomes.append(BeginOutcome.DUPLICATE)
            else:
                outcomes.append(BeginOutcome.CONFLICT)
            continue
        if _series_study(conn, inst.partition, inst.series_uid) not in (None, inst.study_uid):
            outcomes.append(BeginOutcome.CONFLICT)
            continue
        conn.execute(
            "INSERT INTO instances (partition, sop_uid, study_uid, series_uid, state,"
            " sop_class_uid, transfer_syntax_uid, blob_key, size, sha256, created_at,"
            " received_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
            (
                inst.partition,
                inst.sop_uid,
                inst.study_uid,
                inst.series_uid,
                inst.sop_class_uid,
                inst.transfer_syntax_uid,
                inst.blob_key,
                inst.size,
                inst.sha256,
                now,
                inst.received_at.isoformat(),
            ),
        )
        outcomes.append(BeginOutcome.NEW)
    return outcomes


def _series_study(conn: sqlite3.Connection, partition: str, series_uid: str) -> str | None:
    row = conn.execute(
        "SELECT s.study_uid FROM series se JOIN studies s ON s.pk = se.study_pk"
        " WHERE se.partition = ? AND se.series_uid = ?",
        (partition, series_uid),
    ).fetchone()
    return None if row is None else str(row[0])


@dataclass(slots=True, eq=False)
class _Parent:
    """A patient, study or series row loaded (or created) once per commit batch."""

    pk: int
    parent_pk: int
    partition: str
    attrs: DicomJson
    studies: int = 0
    series: int = 0
    instances: int = 0
    size: int = 0
    sop_classes: list[str] | None = None
    modality: str | None = None
    changed: bool = False
    sop_classes_changed: bool = False
    modalities_dirty: bool = False


class _Commit:
    """Make pending instances visible, creating or updating their parents in memory and
    writing each touched parent once at the end (`flush`)."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.patients: dict[int, _Parent] = {}
        self.studies: dict[tuple[str, str], _Parent] = {}
        self.series: dict[tuple[str, str], _Parent] = {}
        self.study_by_pk: dict[int, _Parent] = {}

    def add(self, inst: NewInstance) -> None:
        row = self.conn.execute(
            "SELECT pk, state, study_uid, series_uid FROM instances"
            " WHERE partition = ? AND sop_uid = ?",
            (inst.partition, inst.sop_uid),
        ).fetchone()
        if row is not None and row[1] == "committed":
            if (row[2], row[3]) == (inst.study_uid, inst.series_uid):
                return  # committed already: commit is idempotent
            raise ConflictError(
                f"SOP Instance {inst.sop_uid} is stored under another study or series"
            )
        study = self._study(inst)
        series = self._series(inst, study)
        patient = self.patients[study.parent_pk]
        self._write_instance(inst, None if row is None else int(row[0]), study.pk, series.pk)
        series.instances += 1
        study.instances += 1
        study.size += inst.size
        patient.instances += 1
        assert study.sop_classes is not None
        if inst.sop_class_uid not in study.sop_classes:
            study.sop_classes.append(inst.sop_class_uid)
            study.sop_classes_changed = True

    def _patient(self, pk: int) -> _Parent:
        found = self.patients.get(pk)
        if found is None:
            row = self.conn.execute(
                "SELECT partition, attrs, num_studies, num_series, num_instances"
                " FROM patients WHERE pk = ?",
                (pk,),
            ).fetchone()
            found = _Parent(pk, 0, row[0], loads(row[1]), row[2], row[3], row[4])
            self.patients[pk] = found
        return found

    def _new_study_patient(self, inst: NewInstance) -> _Parent:
        key_id = first_text(inst.patient_attrs, PATIENT_ID, "LO")
        key_issuer = first_text(inst.patient_attrs, ISSUER_OF_PATIENT_ID, "LO")
        row = self.conn.execute(
            "SELECT pk FROM patients WHERE partition = ? AND key_id = ? AND key_issuer = ?",
            (inst.partition, key_id, key_issuer),
        ).fetchone()
        if row is not None:
            return self._patient(int(row[0]))
        pk = self.conn.execute(
            "INSERT INTO patients (partition, key_id, key_issuer, attrs) VALUES (?, ?, ?, '{}')",
            (inst.partition, key_id, key_issuer),
        ).lastrowid
        assert pk is not None
        patient = _Parent(pk, 0, inst.partition, {}, changed=True)
        self.patients[pk] = patient
        return patient

    def _study(self, inst: NewInstance) -> _Parent:
        key = (inst.partition, inst.study_uid)
        study = self.studies.get(key)
        if study is None:
            row = self.conn.execute(
                "SELECT pk, patient_pk, attrs, num_series, num_instances, size_bytes,"
                " sop_classes FROM studies WHERE partition = ? AND study_uid = ?",
                key,
            ).fetchone()
            if row is not None:
                study = _Parent(
                    *(row[0], row[1], inst.partition, loads(row[2])),
                    *(0, row[3], row[4], row[5], loads(row[6])),
                )
                self._patient(study.parent_pk)
            else:
                patient = self._new_study_patient(inst)
                pk = self.conn.execute(
                    "INSERT INTO studies (partition, patient_pk, study_uid, created_at,"
                    " updated_at, attrs) VALUES (?, ?, ?, ?, ?, '{}')",
                    (inst.partition, patient.pk, inst.study_uid, self.now, self.now),
                ).lastrowid
                assert pk is not None
                study = _Parent(pk, patient.pk, inst.partition, {}, sop_classes=[], changed=True)
                patient.studies += 1
            self.studies[key] = study
            self.study_by_pk[study.pk] = study
        study.changed |= merge_attrs(study.attrs, inst.study_attrs)
        patient = self.patients[study.parent_pk]
        patient.changed |= merge_attrs(patient.attrs, inst.patient_attrs)
        return study

    def _series(self, inst: NewInstance, study: _Parent) -> _Parent:
        key = (inst.partition, inst.series_uid)
        series = self.series.get(key)
        if series is None:
            row = self.conn.execute(
                "SELECT pk, study_pk, attrs, num_instances, modality FROM series"
                " WHERE partition = ? AND series_uid = ?",
                key,
            ).fetchone()
            if row is not None:
                series = _Parent(
                    row[0], row[1], inst.partition, loads(row[2]), instances=row[3], modality=row[4]
                )
            else:
                pk = self.conn.execute(
                    "INSERT INTO series (partition, study_pk, series_uid, created_at,"
                    " updated_at, attrs) VALUES (?, ?, ?, ?, ?, '{}')",
                    (inst.partition, study.pk, inst.series_uid, self.now, self.now),
                ).lastrowid
                assert pk is not None
                series = _Parent(pk, study.pk, inst.partition, {}, changed=True)
                study.series += 1
                self.patients[study.parent_pk].series += 1
            self.series[key] = series
        if series.parent_pk != study.pk:
            raise ConflictError(f"Series {inst.series_uid} belongs to another study")
        series.changed |= merge_attrs(series.attrs, inst.series_attrs)
        return series

    def _write_instance(
        self, inst: NewInstance, pending_pk: int | None, study_pk: int, series_pk: int
    ) -> None:
        values, _ = column_values("i", inst.instance_attrs)
        frames = len(inst.pixel.frames) if inst.pixel is not None else None
        data = (
            inst.study_uid,
            inst.series_uid,
            study_pk,
            series_pk,
            inst.sop_class_uid,
            values["instance_number"],
            inst.transfer_syntax_uid,
            inst.blob_key,
            inst.size,
            inst.sha256,
            number_of_frames(inst.instance_attrs, frames),
            inst.received_at.isoformat(),
            self.now,
            encode_pixel(inst.pixel),
            encode_bulk(inst.bulk_ranges),
            dumps(inst.instance_attrs),
        )
        if pending_pk is None:
            cursor = self.conn.execute(
                "INSERT INTO instances (study_uid, series_uid, study_pk, series_pk,"
                " sop_class_uid, instance_number, transfer_syntax_uid, blob_key, size, sha256,"
                " number_of_frames, received_at, committed_at, pixel, bulk_ranges, attrs,"
                " partition, sop_uid, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'committed', ?)",
                (*data, inst.partition, inst.sop_uid, self.now),
            )
            pending_pk = cursor.lastrowid
        else:
            self.conn.execute(
                "UPDATE instances SET study_uid = ?, series_uid = ?, study_pk = ?,"
                " series_pk = ?, sop_class_uid = ?, instance_number = ?,"
                " transfer_syntax_uid = ?, blob_key = ?, size = ?, sha256 = ?,"
                " number_of_frames = ?, received_at = ?, committed_at = ?, pixel = ?,"
                " bulk_ranges = ?, attrs = ?, state = 'committed' WHERE pk = ?",
                (*data, pending_pk),
            )
        self.conn.execute(
            "INSERT OR REPLACE INTO instance_metadata (instance_pk, document) VALUES (?, ?)",
            (pending_pk, inst.metadata),
        )

    def flush(self) -> None:
        conn = self.conn
        for series in self.series.values():
            if series.changed:
                values, irregular = column_values("se", series.attrs)
                if values["modality"] != series.modality:
                    self.study_by_pk[series.parent_pk].modalities_dirty = True
                _update(conn, "series", series.pk, values, irregular, series.attrs)
            conn.execute(
                "UPDATE series SET num_instances = ?, updated_at = ? WHERE pk = ?",
                (series.instances, self.now, series.pk),
            )
        for study in self.studies.values():
            if study.changed:
                values, irregular = column_values("s", study.attrs)
                _update(conn, "studies", study.pk, values, irregular, study.attrs)
                _write_names(conn, "s", study)
            if study.modalities_dirty:
                refresh_modalities(conn, study.pk)
            if study.sop_classes_changed:
                assert study.sop_classes is not None
                conn.execute(
                    "UPDATE studies SET sop_classes = ? WHERE pk = ?",
                    (dumps(sorted(study.sop_classes)), study.pk),
                )
            conn.execute(
                "UPDATE studies SET num_series = ?, num_instances = ?, size_bytes = ?,"
                " updated_at = ? WHERE pk = ?",
                (study.series, study.instances, study.size, self.now, study.pk),
            )
        for patient in self.patients.values():
            if patient.changed:
                values, irregular = column_values("p", patient.attrs)
                _update(conn, "patients", patient.pk, values, irregular, patient.attrs)
                _write_names(conn, "p", patient)
            conn.execute(
                "UPDATE patients SET num_studies = ?, num_series = ?, num_instances = ?"
                " WHERE pk = ?",
                (patient.studies, patient.series, patient.instances, patient.pk),
            )


def _update(
    conn: sqlite3.Connection,
    table: str,
    pk: int,
    values: dict[str, object],
    irregular: bool,
    attrs: DicomJson,
) -> None:
    """Rewrite a level row's attributes and the columns derived from them."""
    columns = ", ".join(f"{name} = ?" for name in values)
    conn.execute(
        f"UPDATE {table} SET {columns}, irregular = ?, attrs = ? WHERE pk = ?",  # noqa: S608
        (*values.values(), int(irregular), dumps(attrs), pk),
    )


def _write_names(conn: sqlite3.Connection, alias: Alias, row: _Parent) -> None:
    """Replace the folded person names of a patient or study (see `sql.columns`)."""
    table, owner = ("patient_names", "patient_pk") if alias == "p" else ("study_names", "study_pk")
    conn.execute(f"DELETE FROM {table} WHERE {owner} = ?", (row.pk,))  # noqa: S608
    conn.executemany(
        f"INSERT INTO {table} ({owner}, partition, tag, fold) VALUES (?, ?, ?, ?)",  # noqa: S608
        [
            (row.pk, row.partition, tag, fold)
            for tag in NAME_TAGS[alias]
            for fold in name_folds(row.attrs, tag)
        ],
    )


def refresh_modalities(conn: sqlite3.Connection, study_pk: int) -> None:
    """Recompute ModalitiesInStudy (PS3.4 C.6.1.1.3.2) from the study's series."""
    conn.execute("DELETE FROM study_modalities WHERE study_pk = ?", (study_pk,))
    conn.execute(
        "INSERT INTO study_modalities (study_pk, partition, modality)"
        " SELECT DISTINCT study_pk, partition, modality FROM series"
        " WHERE study_pk = ? AND modality IS NOT NULL",
        (study_pk,),
    )
    modalities = [
        str(r[0])
        for r in conn.execute(
            "SELECT modality FROM study_modalities WHERE study_pk = ? ORDER BY modality",
            (study_pk,),
        )
    ]
    conn.execute("UPDATE studies SET modalities = ? WHERE pk = ?", (dumps(modalities), study_pk))


def write_events(conn: sqlite3.Connection, events: Sequence[Event], now: float) -> None:
    """Append to the outbox, in the caller's transaction (DESIGN.md key idea 4)."""
    default_time = datetime.fromtimestamp(now, UTC).isoformat()
    conn.executemany(
        "INSERT INTO outbox (type, partition, data, time) VALUES (?, ?, ?, ?)",
        [
            (
                e.type,
                e.partition,
                dumps(e.data),
                e.time.isoformat() if e.time is not None else default_time,
            )
            for e in events
        ],
    )


def commit_instances(
    conn: sqlite3.Connection, instances: Sequence[NewInstance], events: Sequence[Event], now: float
) -> None:
    batch = _Commit(conn, now)
    for inst in instances:
        batch.add(inst)
    batch.flush()
    write_events(conn, events, now)
