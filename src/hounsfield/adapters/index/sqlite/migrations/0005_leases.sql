-- Named leases with a position (services/events.py: the outbox relay). Exactly one process
-- of all the replicas sharing this index holds a lease at a time and renews it while it works;
-- the position (the last outbox sequence number the bus accepted) is advanced only by the
-- holder, so a process that lost the lease cannot move it back.

CREATE TABLE leases (
    name        TEXT        PRIMARY KEY,
    owner       TEXT        NOT NULL,
    lease_until REAL        NOT NULL,
    position    INTEGER     NOT NULL DEFAULT 0
);
