-- The audit trail (PS3.15 A.5 audit messages, services/audit.py). Append-only: each record
-- carries the SHA-256 of the previous one (prev_hash) and of its own content (hash), so an
-- edited, deleted or reordered record breaks the chain (`hounsfield audit verify`). The
-- triggers refuse updates, deletes and truncation through SQL; the chain detects whatever bypasses it.
-- audit_head is the head of the chain: appending writers serialise on its one row.

CREATE TABLE audit_log (
    seq          bigint   PRIMARY KEY,
    event_time   text     NOT NULL,
    event_type   text     NOT NULL,
    action       text     NOT NULL,
    outcome      integer  NOT NULL,
    user_id      text     NOT NULL,
    address      text     NOT NULL,
    partition    text     NOT NULL,
    patient_ids  text     NOT NULL,
    study_uids   text     NOT NULL,
    xml          text     NOT NULL,
    prev_hash    text     NOT NULL,
    hash         text     NOT NULL
);

CREATE INDEX audit_log_time ON audit_log (event_time);
CREATE INDEX audit_log_type ON audit_log (event_type, seq);
CREATE INDEX audit_log_user ON audit_log (user_id, seq);

-- One row per patient (P) or study (S) a record names, for the /api/audit filters.
CREATE TABLE audit_objects (
    kind   text    NOT NULL,
    value  text    NOT NULL,
    seq    bigint  NOT NULL,
    PRIMARY KEY (kind, value, seq)
);

CREATE TABLE audit_head (
    id    integer PRIMARY KEY CHECK (id = 1),
    seq   bigint  NOT NULL,
    hash  text    NOT NULL
);

INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
