-- The audit trail (PS3.15 A.5 audit messages, services/audit.py). Append-only: each record
-- carries the SHA-256 of the previous one (prev_hash) and of its own content (hash), so an
-- edited, deleted or reordered record breaks the chain (`hounsfield audit verify`). The
-- triggers refuse updates and deletes through SQL; the chain detects whatever bypasses them.
-- audit_head is the head of the chain: appending writers serialise on its one row.

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    event_time   TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    outcome      INTEGER NOT NULL,
    user_id      TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    partition    TEXT    NOT NULL,
    patient_ids  TEXT    NOT NULL,
    study_uids   TEXT    NOT NULL,
    xml          TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);

CREATE INDEX audit_log_time ON audit_log (event_time);
CREATE INDEX audit_log_type ON audit_log (event_type, seq);
CREATE INDEX audit_log_user ON audit_log (user_id, seq);

-- One row per patient (P) or study (S) a record names, for the /api/audit filters.
CREATE TABLE audit_objects (
    kind   TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (kind, value, seq)
) WITHOUT ROWID;

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
);

INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
