-- Hounsfield index, schema 1. Immutable once released: change the schema in a new file.
--
-- Every row carries its partition and every unique key includes it (DESIGN.md key idea 6).
-- Each level row keeps its attributes as a DICOM JSON blob (`attrs`, PS3.18 F.2) plus the
-- indexed columns that let SQL pre-filter queries (see adapters/index/sql/columns.py).
-- Counts, ModalitiesInStudy and SOPClassesInStudy are maintained on commit and delete.
-- Indexes on parent keys also hold the partition, so that scoped candidate searches are
-- answered from the index alone (covering) without reading the rows.

CREATE TABLE patients (
    pk            INTEGER PRIMARY KEY,
    partition     TEXT    NOT NULL DEFAULT 'default',
    key_id        TEXT    NOT NULL,            -- PatientID when the row was created, or ''
    key_issuer    TEXT    NOT NULL,            -- IssuerOfPatientID then, or ''
    patient_id    TEXT,                        -- PatientID as matched (may be added later)
    num_studies   INTEGER NOT NULL DEFAULT 0,
    num_series    INTEGER NOT NULL DEFAULT 0,
    num_instances INTEGER NOT NULL DEFAULT 0,
    irregular     INTEGER NOT NULL DEFAULT 0,  -- an indexed attribute has several values
    attrs         BLOB    NOT NULL,
    UNIQUE (partition, key_id, key_issuer)
);
CREATE INDEX patients_id ON patients (partition, patient_id);
CREATE INDEX patients_irregular ON patients (partition) WHERE irregular = 1;

-- One row per non-empty component group of each value of an indexed PN attribute, folded
-- (case and marks) so that PN single value and wild card matching are index range scans.
CREATE TABLE patient_names (
    patient_pk INTEGER NOT NULL REFERENCES patients (pk) ON DELETE CASCADE,
    partition  TEXT    NOT NULL,
    tag        TEXT    NOT NULL,
    fold       TEXT    NOT NULL,
    PRIMARY KEY (patient_pk, tag, fold)
) WITHOUT ROWID;
CREATE INDEX patient_names_fold ON patient_names (partition, tag, fold);

CREATE TABLE studies (
    pk                INTEGER PRIMARY KEY,
    partition         TEXT    NOT NULL DEFAULT 'default',
    patient_pk        INTEGER NOT NULL REFERENCES patients (pk),
    study_uid         TEXT    NOT NULL,
    study_date        TEXT,                     -- canonical YYYYMMDD
    study_time        TEXT,
    accession_number  TEXT,
    study_id          TEXT,
    study_description TEXT,
    modalities        BLOB    NOT NULL DEFAULT '[]',  -- JSON array, sorted
    sop_classes       BLOB    NOT NULL DEFAULT '[]',  -- JSON array, sorted
    num_series        INTEGER NOT NULL DEFAULT 0,
    num_instances     INTEGER NOT NULL DEFAULT 0,
    size_bytes        INTEGER NOT NULL DEFAULT 0,
    irregular         INTEGER NOT NULL DEFAULT 0,
    created_at        REAL    NOT NULL,              -- Unix time of the first commit
    updated_at        REAL    NOT NULL,              -- Unix time of the last commit
    attrs             BLOB    NOT NULL,
    UNIQUE (partition, study_uid)
);
CREATE INDEX studies_patient ON studies (patient_pk, partition);
CREATE INDEX studies_date ON studies (partition, study_date);
CREATE INDEX studies_accession ON studies (partition, accession_number);
CREATE INDEX studies_study_id ON studies (partition, study_id);
CREATE INDEX studies_updated ON studies (partition, updated_at);
CREATE INDEX studies_irregular ON studies (partition) WHERE irregular = 1;

CREATE TABLE study_names (
    study_pk  INTEGER NOT NULL REFERENCES studies (pk) ON DELETE CASCADE,
    partition TEXT    NOT NULL,
    tag       TEXT    NOT NULL,
    fold      TEXT    NOT NULL,
    PRIMARY KEY (study_pk, tag, fold)
) WITHOUT ROWID;
CREATE INDEX study_names_fold ON study_names (partition, tag, fold);

-- The distinct modalities of a study's series: ModalitiesInStudy (PS3.4 C.6.1.1.3.2).
CREATE TABLE study_modalities (
    study_pk  INTEGER NOT NULL REFERENCES studies (pk) ON DELETE CASCADE,
    partition TEXT    NOT NULL,
    modality  TEXT    NOT NULL,
    PRIMARY KEY (study_pk, modality)
) WITHOUT ROWID;
CREATE INDEX study_modalities_modality ON study_modalities (partition, modality, study_pk);

CREATE TABLE series (
    pk                 INTEGER PRIMARY KEY,
    partition          TEXT    NOT NULL DEFAULT 'default',
    study_pk           INTEGER NOT NULL REFERENCES studies (pk),
    series_uid         TEXT    NOT NULL,
    modality           TEXT,
    series_number      INTEGER,
    series_description TEXT,
    pps_start_date     TEXT,
    pps_start_time     TEXT,
    num_instances      INTEGER NOT NULL DEFAULT 0,
    irregular          INTEGER NOT NULL DEFAULT 0,
    created_at         REAL    NOT NULL,
    updated_at         REAL    NOT NULL,
    attrs              BLOB    NOT NULL,
    UNIQUE (partition, series_uid)
);
CREATE INDEX series_study ON series (study_pk, partition);
CREATE INDEX series_modality ON series (partition, modality);
CREATE INDEX series_updated ON series (partition, updated_at);
CREATE INDEX series_irregular ON series (partition) WHERE irregular = 1;

-- An instance is 'pending' from begin() until commit(); pending rows have no parents yet and
-- are invisible to every read. study_uid/series_uid are kept to classify later uploads.
CREATE TABLE instances (
    pk                  INTEGER PRIMARY KEY,
    partition           TEXT    NOT NULL DEFAULT 'default',
    sop_uid             TEXT    NOT NULL,
    study_uid           TEXT    NOT NULL,
    series_uid          TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'committed')),
    study_pk            INTEGER REFERENCES studies (pk),
    series_pk           INTEGER REFERENCES series (pk),
    sop_class_uid       TEXT    NOT NULL,
    instance_number     INTEGER,
    transfer_syntax_uid TEXT    NOT NULL,
    blob_key            TEXT    NOT NULL,
    size                INTEGER NOT NULL DEFAULT 0,
    sha256              TEXT    NOT NULL DEFAULT '',
    number_of_frames    INTEGER NOT NULL DEFAULT 0,
    created_at          REAL    NOT NULL,  -- Unix time of begin(); sweep_pending compares it
    received_at         TEXT    NOT NULL,  -- ISO 8601, from NewInstance.received_at
    committed_at        REAL,
    pixel               BLOB,              -- JSON [offset, length, encapsulated, frames]
    bulk_ranges         BLOB,              -- JSON {path: [offset, length]}
    attrs               BLOB,              -- instance-level DICOM JSON
    UNIQUE (partition, sop_uid)
);
CREATE INDEX instances_series ON instances (series_pk, partition, state);
CREATE INDEX instances_study ON instances (study_pk);
CREATE INDEX instances_pending ON instances (created_at) WHERE state = 'pending';

-- The per-instance metadata document (WADO-RS metadata), apart so instance rows stay small.
CREATE TABLE instance_metadata (
    instance_pk INTEGER PRIMARY KEY REFERENCES instances (pk) ON DELETE CASCADE,
    document    BLOB NOT NULL
);

-- Events written in the transaction that causes them (DESIGN.md key idea 4).
CREATE TABLE outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    type      TEXT NOT NULL,
    partition TEXT NOT NULL,
    data      BLOB NOT NULL,
    time      TEXT NOT NULL
);

CREATE TABLE remote_aes (
    aet         TEXT    PRIMARY KEY,
    host        TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    partition   TEXT    NOT NULL DEFAULT 'default',
    tls         INTEGER NOT NULL DEFAULT 0,
    description TEXT    NOT NULL DEFAULT ''
);
