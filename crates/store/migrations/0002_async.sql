-- Kindling state, version 2: the durable asynchronous-invocation queue, per-qualifier event
-- invoke configuration, and the built-in dead-letter store.

CREATE TABLE async_events (
    id             TEXT PRIMARY KEY,          -- the request id, the same on every attempt
    function_name  TEXT NOT NULL,
    qualifier      TEXT NOT NULL,             -- as invoked; '' when unqualified
    payload        BLOB NOT NULL,
    enqueued_ms    INTEGER NOT NULL,          -- when it was accepted (event age counts from here)
    attempts       INTEGER NOT NULL DEFAULT 0,-- invocations that ran and failed
    not_before_ms  INTEGER NOT NULL,          -- earliest time of the next attempt
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    last_result    TEXT                       -- JSON of the last failed attempt
);
CREATE INDEX async_events_ready ON async_events (not_before_ms);
CREATE INDEX async_events_function ON async_events (function_name, enqueued_ms);

CREATE TABLE event_invoke_configs (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT NOT NULL,              -- '$LATEST', a version or an alias
    config        TEXT NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);

CREATE TABLE dead_letters (
    id          TEXT PRIMARY KEY,
    queue       TEXT NOT NULL,                -- the destination's name (an SQS queue, SNS topic...)
    created_ms  INTEGER NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX dead_letters_queue ON dead_letters (queue, created_ms);
