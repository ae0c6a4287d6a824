-- Kindling nodes sharing one database: membership with heartbeats, and the resources
-- (event source mappings, schedules) each node owns. Times are the DATABASE's clock
-- (milliseconds since the epoch), so that nodes' clocks never decide who is alive.

CREATE TABLE kindling_nodes (
    node_id       TEXT COLLATE "C" PRIMARY KEY,
    address       TEXT NOT NULL,              -- where the node serves Kindling's API
    incarnation   BIGINT NOT NULL,            -- bumped at every (re)registration
    started_ms    BIGINT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL,
    load          BIGINT NOT NULL DEFAULT 0,  -- invocations in flight at the last heartbeat
    alive         BOOLEAN NOT NULL,
    died_ms       BIGINT                      -- when it was declared dead or left
);

-- One row per owned-at-most-once resource ('esm:<uuid>', 'schedule:<arn>'). `epoch` grows at
-- every change of owner: a write made under an older epoch is refused.
CREATE TABLE kindling_leases (
    resource     TEXT COLLATE "C" PRIMARY KEY,
    owner        TEXT COLLATE "C",
    epoch        BIGINT NOT NULL DEFAULT 0,
    acquired_ms  BIGINT
);
CREATE INDEX kindling_leases_owner ON kindling_leases (owner) WHERE owner IS NOT NULL;
