-- Derived copies of stored instances (services/derived.py): an HTJ2K re-encoding kept next to
-- the untouched original, so frames decode fast. Removed with their instance; the delete
-- returns their blob keys together with the instance's.

CREATE TABLE derived_copies (
    instance_pk         bigint      NOT NULL REFERENCES instances (pk) ON DELETE CASCADE,
    kind                text        NOT NULL,
    transfer_syntax_uid text        NOT NULL,
    blob_key            text        NOT NULL UNIQUE,
    size                bigint      NOT NULL,
    sha256              text        NOT NULL,
    pixel               bytea,
    created_at          timestamptz NOT NULL,
    PRIMARY KEY (instance_pk, kind)
);
