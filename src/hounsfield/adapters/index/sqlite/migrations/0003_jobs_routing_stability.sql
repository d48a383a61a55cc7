-- Durable jobs (ports/jobs.py, DESIGN.md key idea 5), forwarding rules and stable-study
-- detection.
--
-- A job is claimed by setting a lease (owner, expiry); a lease that expires hands the job to
-- another worker. The claim index lists due work in claim order (priority, then run_at).
-- Times are Unix seconds (REAL), like the rest of the SQLite schema.

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    partition       TEXT    NOT NULL,
    payload         BLOB    NOT NULL,  -- JSON object
    priority        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_at          REAL    NOT NULL,
    lease_owner     TEXT,
    lease_until     REAL,
    last_error      TEXT,
    idempotency_key TEXT    UNIQUE,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX jobs_due ON jobs (kind, priority DESC, run_at) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_state ON jobs (state, kind, id);
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('succeeded', 'cancelled');

-- Stability (SeriesStable / StudyStable events): a study or series is stable once no instance
-- has been committed to it for a configured time. `stable_at` records when that was last
-- announced; a later commit moves `updated_at` past it and the row is a candidate again.
-- Existing rows count as announced, so upgrading does not announce a whole archive at once.
ALTER TABLE studies ADD COLUMN stable_at REAL;
ALTER TABLE series ADD COLUMN stable_at REAL;
UPDATE studies SET stable_at = updated_at;
UPDATE series SET stable_at = updated_at;
CREATE INDEX studies_unstable ON studies (updated_at)
    WHERE stable_at IS NULL OR stable_at < updated_at;
CREATE INDEX series_unstable ON series (updated_at)
    WHERE stable_at IS NULL OR stable_at < updated_at;

-- Forwarding rules (services/forwarding.py): one JSON document per rule, validated by the
-- service; few rows, read whole.
CREATE TABLE forward_rules (
    name     TEXT PRIMARY KEY,
    document BLOB NOT NULL
);
