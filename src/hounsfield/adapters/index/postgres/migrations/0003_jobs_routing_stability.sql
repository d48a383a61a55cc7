-- Durable jobs (ports/jobs.py, DESIGN.md key idea 5), forwarding rules and stable-study
-- detection.
--
-- A job is claimed by setting a lease (owner, expiry); workers of every replica claim with
-- FOR UPDATE SKIP LOCKED, so they never wait on each other's rows. A lease that expires hands
-- the job to another worker. The claim index lists due work in claim order.

CREATE TABLE jobs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL,
    partition       text        NOT NULL,
    payload         jsonb       NOT NULL,
    priority        integer     NOT NULL DEFAULT 0,
    state           text        NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,
    max_attempts    integer     NOT NULL,
    run_at          timestamptz NOT NULL,
    lease_owner     text,
    lease_until     timestamptz,
    last_error      text,
    idempotency_key text        UNIQUE,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (kind, priority DESC, run_at) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_state ON jobs (state, kind, id);
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('succeeded', 'cancelled');

-- Stability (SeriesStable / StudyStable events): a study or series is stable once no instance
-- has been committed to it for a configured time. `stable_at` records when that was last
-- announced; a later commit moves `updated_at` past it and the row is a candidate again.
-- Existing rows count as announced, so upgrading does not announce a whole archive at once.
ALTER TABLE studies ADD COLUMN stable_at timestamptz;
ALTER TABLE series ADD COLUMN stable_at timestamptz;
UPDATE studies SET stable_at = updated_at;
UPDATE series SET stable_at = updated_at;
CREATE INDEX studies_unstable ON studies (updated_at)
    WHERE stable_at IS NULL OR stable_at < updated_at;
CREATE INDEX series_unstable ON series (updated_at)
    WHERE stable_at IS NULL OR stable_at < updated_at;

-- Forwarding rules (services/forwarding.py): one JSON document per rule, validated by the
-- service; few rows, read whole.
CREATE TABLE forward_rules (
    name     text  PRIMARY KEY,
    document jsonb NOT NULL
);
