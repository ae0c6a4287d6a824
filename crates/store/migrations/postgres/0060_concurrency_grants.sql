-- Cluster-wide concurrency: each live node holds a grant of slots per scope ('unreserved':
-- the account's unreserved pool; 'function:<name>': a function's reserved concurrency) and
-- admits invocations locally against it. The grants of live nodes in a scope never add up to
-- more than the scope's limit; a node's grants live as long as the node (they are deleted in
-- the transaction that declares it dead, or when it leaves or registers again).

CREATE TABLE kindling_concurrency_grants (
    scope       TEXT COLLATE "C" NOT NULL,
    node_id     TEXT COLLATE "C" NOT NULL,
    granted     BIGINT NOT NULL,              -- slots the node may use
    demand      BIGINT NOT NULL,              -- its peak in flight plus refusals, last round
    scope_limit BIGINT NOT NULL,              -- the limit as the node knows it
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (scope, node_id)
);
CREATE INDEX kindling_concurrency_grants_node ON kindling_concurrency_grants (node_id);
