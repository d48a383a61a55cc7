-- API keys (ports/auth.py): the key id is public (it is part of the key a client presents),
-- the secret is kept only as its SHA-256 digest. A key's scope is one role and the partitions
-- it may use ('*' for all), comma-separated. Revoked keys stay for the record.

CREATE TABLE api_keys (
    key_id        text        PRIMARY KEY,
    name          text        NOT NULL,
    role          text        NOT NULL,
    partitions    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    secret_sha256 text        NOT NULL
);
