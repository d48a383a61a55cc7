-- API keys (ports/auth.py): the key id is public (it is part of the key a client presents),
-- the secret is kept only as its SHA-256 digest. A key's scope is one role and the partitions
-- it may use ('*' for all), comma-separated. Revoked keys stay for the record.

CREATE TABLE api_keys (
    key_id        TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    partitions    TEXT    NOT NULL,
    created_at    REAL    NOT NULL,
    expires_at    REAL,
    revoked_at    REAL,
    secret_sha256 TEXT    NOT NULL
);
