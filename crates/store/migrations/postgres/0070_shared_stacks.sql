-- Stacks shared by several nodes: every save is a compare-and-swap on `revision`, and a stack
-- with an operation in flight names its `owner` (the node running it), so that the operation
-- of a node that died is adopted by another. A name is taken by at most one stack not deleted.
ALTER TABLE cfn_stacks ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE cfn_stacks ADD COLUMN owner TEXT COLLATE "C";
CREATE UNIQUE INDEX cfn_stacks_live_name ON cfn_stacks (name) WHERE status <> 'DELETE_COMPLETE';
CREATE INDEX cfn_stacks_owned ON cfn_stacks (owner) WHERE owner IS NOT NULL;
