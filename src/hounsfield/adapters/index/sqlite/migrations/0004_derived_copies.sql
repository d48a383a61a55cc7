-- Derived copies of stored instances (services/derived.py): an HTJ2K re-encoding kept next to
-- the untouched original, so frames decode fast. Removed with their instance; the delete
-- returns their blob keys together with the instance's.

CREATE TABLE derived_copies (
    instance_pk         INTEGER NOT NULL REFERENCES instances (pk) ON DELETE CASCADE,
    kind                TEXT    NOT NULL,
    transfer_syntax_uid TEXT    NOT NULL,
    blob_key            TEXT    NOT NULL UNIQUE,
    size                INTEGER NOT NULL,
    sha256              TEXT    NOT NULL,
    pixel               BLOB,   -- JSON layout, as instances.pixel
    created_at          REAL    NOT NULL,
    PRIMARY KEY (instance_pk, kind)
);
