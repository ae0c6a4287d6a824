-- Routing of synchronous invokes between nodes sharing one database.
--
-- `kindling_warm`: the invoke targets (function, version, code revision) for which each node
-- holds warm environments, one row per node, rewritten whole when its set changes (at most a
-- few times a second, never on an invocation's path). A row counts only while its node is
-- alive at the same incarnation: a dead, departed or restarted node advertises nothing.
CREATE TABLE kindling_warm (
    node_id      TEXT COLLATE "C" PRIMARY KEY,
    incarnation  BIGINT NOT NULL,
    targets      TEXT[] NOT NULL,
    updated_ms   BIGINT NOT NULL
);

-- Cluster-wide settings made once by the first node. `route_token`: the value nodes put in
-- the hop header of the invokes they forward to each other, so that a client cannot pass a
-- request off as forwarded (from `gen_random_uuid`, which draws from a strong random source).
CREATE TABLE kindling_cluster_settings (
    name   TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT NOT NULL
);
INSERT INTO kindling_cluster_settings (name, value)
    VALUES ('route_token', replace(gen_random_uuid()::TEXT || gen_random_uuid()::TEXT, '-', ''));
