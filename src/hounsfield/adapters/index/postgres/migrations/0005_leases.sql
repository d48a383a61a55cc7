-- Named leases with a position (services/events.py: the outbox relay). Exactly one process
-- of all the replicas sharing this index holds a lease at a time and renews it while it works;
-- the position (the last outbox sequence number the bus accepted) is advanced only by the
-- holder, so a process that lost the lease cannot move it back.

CREATE TABLE leases (
    name        text        PRIMARY KEY,
    owner       text        NOT NULL,
    lease_until timestamptz NOT NULL,
    position    bigint      NOT NULL DEFAULT 0
);
