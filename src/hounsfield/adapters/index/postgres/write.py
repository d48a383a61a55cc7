"""The ingest commit path on PostgreSQL, in batches (DESIGN.md key idea 3).

On a server, every statement is a network round trip, and per-row get-or-create round trips
cap ingest at ~2k rows/s (DESIGN.md §4). So a batch costs a fixed number of statements
whatever its size: rows go in as arrays (`INSERT ... SELECT FROM unnest(...)`), parents are
looked up once per batch by `= ANY(...)` and cached, and counts are applied as one
`UPDATE ... FROM unnest(...)` per level.

Several replicas may commit the same new study at once (issue 5). Parents are therefore
created with `ON CONFLICT DO NOTHING` and re-selected when another transaction won; the
parent rows a batch changes are locked (`FOR UPDATE`, studies before series, in key order)
before their attributes are merged, so merges never lose each other's attributes; and counts
move by increments computed from the rows this transaction itself inserted (`RETURNING`), so
an instance committed twice concurrently is counted once. A parent deleted under our feet
raises `Retry`, and the unit of work runs again (`connection.run_transaction`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hounsfield.adapters.index.postgres.batch import (
    Conn,
    by_partition,
    instance_states,
    refresh_modalities,
    utc,
    write_events,
)
from hounsfield.adapters.index.postgres.connection import Retry
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
from hounsfield.ports.index import Event, NewInstance

_EMPTY = b"{}"


@dataclass(slots=True, eq=False)
class _Parent:
    """A locked patient, study or series row, with what this batch adds to it."""

    pk: int
    parent_pk: int
    attrs: DicomJson
    modality: str | None = None
    sop_classes: list[str] = field(default_factory=list)
    add_studies: int = 0
    add_series: int = 0
    add_instances: int = 0
    add_size: int = 0
    changed: bool = False
    sop_classes_changed: bool = False
    modalities_dirty: bool = False


def _patient_key(inst: NewInstance) -> tuple[str, str]:
    return (
        first_text(inst.patient_attrs, PATIENT_ID, "LO"),
        first_text(inst.patient_attrs, ISSUER_OF_PATIENT_ID, "LO"),
    )


class _Commit:
    """One partition's share of a commit: locks and creates parents, then writes the
    instances, then every touched parent once (`flush`)."""

    def __init__(self, conn: Conn, partition: str, now: datetime) -> None:
        self.conn, self.partition, self.now = conn, partition, now
        self.patients: dict[int, _Parent] = {}
        self.studies: dict[str, _Parent] = {}
        self.series: dict[str, _Parent] = {}
        self.study_by_pk: dict[int, _Parent] = {}
        self.documents: tuple[list[int], list[bytes]] = ([], [])

    def run(self, batch: list[NewInstance]) -> None:
        batch = self._not_yet_committed(batch)
        if not batch:
            return
        self._lock_studies(batch)
        self._lock_series(batch)
        for inst in batch:
            study, series = self.studies[inst.study_uid], self.series[inst.series_uid]
            patient = self.patients[study.parent_pk]
            study.changed |= merge_attrs(study.attrs, inst.study_attrs)
            patient.changed |= merge_attrs(patient.attrs, inst.patient_attrs)
            series.changed |= merge_attrs(series.attrs, inst.series_attrs)
        for inst in self._write_instances(batch):
            study, series = self.studies[inst.study_uid], self.series[inst.series_uid]
            series.add_instances += 1
            study.add_instances += 1
            study.add_size += inst.size
            self.patients[study.parent_pk].add_instances += 1
            if inst.sop_class_uid not in study.sop_classes:
                study.sop_classes.append(inst.sop_class_uid)
                study.sop_classes_changed = True

    def _not_yet_committed(self, batch: list[NewInstance]) -> list[NewInstance]:
        """Drop instances already committed (commit is idempotent) and repeats within the
        batch; one committed under another study or series is a conflict."""
        states = instance_states(self.conn, self.partition, {i.sop_uid for i in batch})
        kept: dict[str, NewInstance] = {}
        for inst in batch:
            first = kept.get(inst.sop_uid)
            row = states.get(inst.sop_uid)
            if first is not None:
                row = ("committed", first.study_uid, first.series_uid)
            if row is not None and row[0] == "committed":
                if (row[1], row[2]) != (inst.study_uid, inst.series_uid):
                    raise ConflictError(
                        f"SOP Instance {inst.sop_uid} is stored under another study or series"
                    )
                continue
            kept[inst.sop_uid] = inst
        return list(kept.values())

    # -- parents ---------------------------------------------------------------------------

    def _select_studies(self, uids: list[str]) -> None:
        for pk, patient_pk, attrs, sop_classes, uid in self.conn.execute(
            "SELECT pk, patient_pk, attrs, sop_classes, study_uid FROM studies"
            " WHERE partition = %s AND study_uid = ANY(%s) ORDER BY pk FOR UPDATE",
            (self.partition, uids),
        ):
            self._add_study(
                uid, _Parent(pk, patient_pk, loads(attrs), sop_classes=loads(sop_classes))
            )

    def _add_study(self, uid: str, study: _Parent) -> None:
        self.studies[uid] = study
        self.study_by_pk[study.pk] = study

    def _lock_patients(
        self, pks: Iterable[int], keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Lock (and load) patients by key and by primary key; returns pk by key."""
        by_key: dict[tuple[str, str], int] = {}
        for pk, key_id, key_issuer, attrs in self.conn.execute(
            "SELECT pk, key_id, key_issuer, attrs FROM patients WHERE partition = %s"
            " AND (pk = ANY(%s) OR (key_id, key_issuer) IN"
            " (SELECT * FROM unnest(%b::text[], %b::text[])))"
            " ORDER BY pk FOR UPDATE",
            (self.partition, list(pks), [k[0] for k in keys], [k[1] for k in keys]),
        ):
            if pk not in self.patients:
                self.patients[pk] = _Parent(pk, 0, loads(attrs))
            by_key[(key_id, key_issuer)] = pk
        return by_key

    def _lock_studies(self, batch: list[NewInstance]) -> None:
        """Lock the batch's existing studies and their patients, create the missing ones."""
        uids = list(dict.fromkeys(i.study_uid for i in batch))
        self._select_studies(uids)
        missing = {
            i.study_uid: _patient_key(i) for i in reversed(batch) if i.study_uid not in self.studies
        }
        keys = list(dict.fromkeys(missing.values()))
        created_patients: set[int] = set()
        if keys:
            created_patients = {
                int(r[0])
                for r in self.conn.execute(
                    "INSERT INTO patients (partition, key_id, key_issuer, attrs)"
                    " SELECT %s, k, i, %s FROM unnest(%b::text[], %b::text[]) AS u(k, i)"
                    " ON CONFLICT (partition, key_id, key_issuer) DO NOTHING RETURNING pk",
                    (self.partition, _EMPTY, [k[0] for k in keys], [k[1] for k in keys]),
                )
            }
        by_key = self._lock_patients({s.parent_pk for s in self.studies.values()}, keys)
        if any(s.parent_pk not in self.patients for s in self.studies.values()):
            raise Retry("a patient row disappeared")
        for pk in created_patients:
            self.patients[pk].changed = True
        if missing:
            self._create_studies(missing, by_key)
        orphans = [pk for pk in created_patients if not self.patients[pk].add_studies]
        if orphans:  # the study we meant to create was created by a concurrent commit
            self.conn.execute("DELETE FROM patients WHERE pk = ANY(%s)", (orphans,))
            for pk in orphans:
                del self.patients[pk]

    def _create_studies(
        self, missing: dict[str, tuple[str, str]], by_key: dict[tuple[str, str], int]
    ) -> None:
        if any(key not in by_key for key in missing.values()):
            raise Retry("a patient row disappeared")
        uids = list(missing)
        patient_pks = [by_key[missing[uid]] for uid in uids]
        for pk, uid, patient_pk in self.conn.execute(
            "INSERT INTO studies (partition, patient_pk, study_uid, created_at, updated_at,"
            " attrs) SELECT %s, p, u, %s, %s, %s FROM unnest(%b::bigint[], %b::text[])"
            " AS n(p, u) ON CONFLICT (partition, study_uid) DO NOTHING"
            " RETURNING pk, study_uid, patient_pk",
            (self.partition, self.now, self.now, _EMPTY, patient_pks, uids),
        ):
            self._add_study(uid, _Parent(pk, patient_pk, {}, changed=True))
            self.patients[patient_pk].add_studies += 1
        raced = [uid for uid in uids if uid not in self.studies]
        if raced:
            self._select_studies(raced)
            if any(uid not in self.studies for uid in raced):
                raise Retry("a study row disappeared")
            unknown = {self.studies[uid].parent_pk for uid in raced} - self.patients.keys()
            if unknown:
                self._lock_patients(unknown, [])
                if unknown - self.patients.keys():
                    raise Retry("a patient row disappeared")

    def _select_series(self, uids: list[str]) -> None:
        for pk, study_pk, attrs, modality, uid in self.conn.execute(
            "SELECT pk, study_pk, attrs, modality, series_uid FROM series"
            " WHERE partition = %s AND series_uid = ANY(%s) ORDER BY pk FOR UPDATE",
            (self.partition, uids),
        ):
            self.series[uid] = _Parent(pk, study_pk, loads(attrs), modality=modality)

    def _lock_series(self, batch: list[NewInstance]) -> None:
        study_of = {i.series_uid: i.study_uid for i in reversed(batch)}
        uids = list(study_of)
        self._select_series(uids)
        missing = [uid for uid in uids if uid not in self.series]
        if missing:
            study_pks = [self.studies[study_of[uid]].pk for uid in missing]
            for pk, uid, study_pk in self.conn.execute(
                "INSERT INTO series (partition, study_pk, series_uid, created_at, updated_at,"
                " attrs) SELECT %s, s, u, %s, %s, %s FROM unnest(%b::bigint[], %b::text[])"
                " AS n(s, u) ON CONFLICT (partition, series_uid) DO NOTHING"
                " RETURNING pk, series_uid, study_pk",
                (self.partition, self.now, self.now, _EMPTY, study_pks, missing),
            ):
                self.series[uid] = _Parent(pk, study_pk, {}, changed=True)
                study = self.study_by_pk[study_pk]
                study.add_series += 1
                self.patients[study.parent_pk].add_series += 1
            raced = [uid for uid in missing if uid not in self.series]
            if raced:
                self._select_series(raced)
                if any(uid not in self.series for uid in raced):
                    raise Retry("a series row disappeared")
        for inst in batch:  # PS3.3 C.7.3.1: a series belongs to exactly one study
            if self.series[inst.series_uid].parent_pk != self.studies[inst.study_uid].pk:
                raise ConflictError(f"Series {inst.series_uid} belongs to another study")

    # -- instances and parents' updates ----------------------------------------------------

    def _write_instances(self, batch: list[NewInstance]) -> list[NewInstance]:
        """Insert the instances committed, or flip their pending rows; returns those this
        transaction committed (a concurrent commit of the same instance wins the others)."""
        numbers, frames = [], []
        for inst in batch:
            numbers.append(column_values("i", inst.instance_attrs)[0]["instance_number"])
            in_layout = len(inst.pixel.frames) if inst.pixel is not None else None
            frames.append(number_of_frames(inst.instance_attrs, in_layout))
        rows = self.conn.execute(
            "INSERT INTO instances AS t (partition, sop_uid, study_uid, series_uid, state,"
            " study_pk, series_pk, sop_class_uid, instance_number, transfer_syntax_uid,"
            " blob_key, size, sha256, number_of_frames, created_at, received_at, committed_at,"
            " pixel, bulk_ranges, attrs)"
            " SELECT %s, sop, study, series, 'committed', study_pk, series_pk, cls, num, ts,"
            " blob, size, sha, frames, %s, received, %s, pixel, bulk, attrs"
            " FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[],"
            " %b::text[], %b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::text[],"
            " %b::bigint[], %b::timestamptz[], %b::bytea[], %b::bytea[], %b::bytea[])"
            " AS u(sop, study, series, study_pk, series_pk, cls, num, ts, blob, size, sha,"
            " frames, received, pixel, bulk, attrs)"
            " ON CONFLICT (partition, sop_uid) DO UPDATE SET study_uid = EXCLUDED.study_uid,"
            " series_uid = EXCLUDED.series_uid, state = 'committed',"
            " study_pk = EXCLUDED.study_pk, series_pk = EXCLUDED.series_pk,"
            " sop_class_uid = EXCLUDED.sop_class_uid,"
            " instance_number = EXCLUDED.instance_number,"
            " transfer_syntax_uid = EXCLUDED.transfer_syntax_uid,"
            " blob_key = EXCLUDED.blob_key, size = EXCLUDED.size, sha256 = EXCLUDED.sha256,"
            " number_of_frames = EXCLUDED.number_of_frames,"
            " received_at = EXCLUDED.received_at, committed_at = EXCLUDED.committed_at,"
            " pixel = EXCLUDED.pixel, bulk_ranges = EXCLUDED.bulk_ranges,"
            " attrs = EXCLUDED.attrs WHERE t.state = 'pending' RETURNING t.pk, t.sop_uid",
            (
                self.partition,
                self.now,
                self.now,
                [i.sop_uid for i in batch],
                [i.study_uid for i in batch],
                [i.series_uid for i in batch],
                [self.studies[i.study_uid].pk for i in batch],
                [self.series[i.series_uid].pk for i in batch],
                [i.sop_class_uid for i in batch],
                numbers,
                [i.transfer_syntax_uid for i in batch],
                [i.blob_key for i in batch],
                [i.size for i in batch],
                [i.sha256 for i in batch],
                frames,
                [utc(i.received_at) for i in batch],
                [encode_pixel(i.pixel) for i in batch],
                [encode_bulk(i.bulk_ranges) for i in batch],
                [dumps(i.instance_attrs) for i in batch],
            ),
            binary=True,
        ).fetchall()
        pk_of = {str(sop): int(pk) for pk, sop in rows}
        written = [i for i in batch if i.sop_uid in pk_of]
        if len(written) < len(batch):  # committed meanwhile by another transaction
            self._not_yet_committed([i for i in batch if i.sop_uid not in pk_of])
        self.documents = ([pk_of[i.sop_uid] for i in written], [i.metadata for i in written])
        return written

    def flush(self) -> None:
        """Write the documents and every touched parent: statements whose results nobody
        reads, sent together in one pipeline by `commit_instances`."""
        if self.documents[0]:
            self.conn.execute(
                "INSERT INTO instance_metadata (instance_pk, document)"
                " SELECT * FROM unnest(%b::bigint[], %b::bytea[])"
                " ON CONFLICT (instance_pk) DO UPDATE SET document = EXCLUDED.document",
                self.documents,
                binary=True,
            )
        for series in self.series.values():
            if series.changed:
                values, _ = column_values("se", series.attrs)
                if values["modality"] != series.modality:
                    self.study_by_pk[series.parent_pk].modalities_dirty = True
        _rewrite(self.conn, "series", self.series.values())
        self._increments(
            "series",
            self.series.values(),
            "num_instances = num_instances + d.a, updated_at = %s",
            lambda p: (p.add_instances, 0, 0),
            timestamp=True,
        )
        studies = self.studies.values()
        _rewrite(self.conn, "studies", studies)
        _write_names(self.conn, "s", self.partition, [s for s in studies if s.changed])
        dirty = [s.pk for s in studies if s.modalities_dirty]
        if dirty:
            refresh_modalities(self.conn, self.partition, dirty)
        classes = [s for s in studies if s.sop_classes_changed]
        if classes:
            self.conn.execute(
                "UPDATE studies SET sop_classes = d.c FROM unnest(%b::bigint[], %b::bytea[])"
                " AS d(pk, c) WHERE studies.pk = d.pk",
                ([s.pk for s in classes], [dumps(sorted(s.sop_classes)) for s in classes]),
            )
        self._increments(
            "studies",
            studies,
            "num_series = num_series + d.b, num_instances = num_instances + d.a,"
            " size_bytes = size_bytes + d.c, updated_at = %s",
            lambda p: (p.add_instances, p.add_series, p.add_size),
            timestamp=True,
        )
        patients = self.patients.values()
        _rewrite(self.conn, "patients", patients)
        _write_names(self.conn, "p", self.partition, [p for p in patients if p.changed])
        self._increments(
            "patients",
            patients,
            "num_instances = num_instances + d.a, num_series = num_series + d.b,"
            " num_studies = num_studies + d.c",
            lambda p: (p.add_instances, p.add_series, p.add_studies),
            timestamp=False,
        )

    def _increments(
        self,
        table: str,
        rows: Iterable[_Parent],
        assignments: str,
        deltas: Callable[[_Parent], tuple[int, int, int]],
        *,
        timestamp: bool,
    ) -> None:
        """Add this batch's counts to the stored ones, in one statement per table."""
        items = [(p.pk, *deltas(p)) for p in rows]
        items = [item for item in items if any(item[1:])]
        if not items:
            return
        params: list[object] = [self.now] if timestamp else []
        params += [[i[0] for i in items], [i[1] for i in items], [i[2] for i in items]]
        params.append([i[3] for i in items])
        self.conn.execute(
            f"UPDATE {table} SET {assignments}"  # noqa: S608
            " FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])"
            f" AS d(pk, a, b, c) WHERE {table}.pk = d.pk",
            params,
        )


_ALIAS: dict[str, Alias] = {"patients": "p", "studies": "s", "series": "se"}


def _rewrite(conn: Conn, table: str, rows: Iterable[_Parent]) -> None:
    """Rewrite changed level rows' attributes and the columns derived from them."""
    changed = [p for p in rows if p.changed]
    if not changed:
        return
    params = []
    names: list[str] = []
    for row in changed:
        values, irregular = column_values(_ALIAS[table], row.attrs)
        names = list(values)
        params.append((*values.values(), int(irregular), dumps(row.attrs), row.pk))
    columns = ", ".join(f"{name} = %s" for name in names)
    with conn.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {columns}, irregular = %s, attrs = %s WHERE pk = %s",  # noqa: S608
            params,
        )


def _write_names(conn: Conn, alias: Alias, partition: str, rows: list[_Parent]) -> None:
    """Replace the folded person names of patients or studies (see `sql.columns`)."""
    if not rows:
        return
    table, owner = ("patient_names", "patient_pk") if alias == "p" else ("study_names", "study_pk")
    conn.execute(f"DELETE FROM {table} WHERE {owner} = ANY(%s)", ([r.pk for r in rows],))  # noqa: S608
    names = [
        (r.pk, tag, fold)
        for r in rows
        for tag in NAME_TAGS[alias]
        for fold in name_folds(r.attrs, tag)
    ]
    if names:
        conn.execute(
            f"INSERT INTO {table} ({owner}, partition, tag, fold)"  # noqa: S608
            " SELECT o, %s, t, f FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS n(o, t, f)",
            (partition, [n[0] for n in names], [n[1] for n in names], [n[2] for n in names]),
        )


def commit_instances(
    conn: Conn, instances: Sequence[NewInstance], events: Sequence[Event], now: datetime
) -> None:
    """Commit a batch: per partition, lock and create parents and write the instances (a
    fixed number of statements), then send every write whose result is not needed in one
    pipeline (one round trip instead of ~12)."""
    commits = []
    for partition, positions in by_partition(instances).items():
        commits.append(_Commit(conn, partition, now))
        commits[-1].run([instances[at] for at in positions])
    with conn.pipeline():
        for done in commits:
            done.flush()
        write_events(conn, events, now)
