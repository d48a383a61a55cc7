-- Study-level grants (services/grants.py): one study of one partition shared for reading
-- with one principal (a token subject or an API key), as viewer links do, until it expires
-- or is revoked. Checked only when the principal's own roles and partitions do not allow
-- the request.

CREATE TABLE study_grants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partition  TEXT NOT NULL,
    study_uid  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz
);
CREATE INDEX study_grants_subject ON study_grants (subject, study_uid);
