-- CloudFormation stacks (kindling-deploy). Each row holds the stack's whole state as JSON
-- (template, parameters, resources with their physical ids, the operation in flight and what
-- it must undo); events are appended in the same transaction as the state they describe.
CREATE TABLE cfn_stacks (
    stack_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    document   TEXT NOT NULL
);
CREATE INDEX cfn_stacks_by_name ON cfn_stacks (name);

CREATE TABLE cfn_stack_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    stack_id TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX cfn_stack_events_by_stack ON cfn_stack_events (stack_id, seq);

CREATE TABLE cfn_change_sets (
    change_set_id TEXT PRIMARY KEY,
    stack_id      TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    document      TEXT NOT NULL
);
CREATE INDEX cfn_change_sets_by_stack ON cfn_change_sets (stack_id);
